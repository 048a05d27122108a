//! `onetrip bench`: the engine on the peers' joint workload (`../shared/peers/joint.bpmn`): a
//! window accepts, three departments handle in parallel, the window delivers: 5 tasks per
//! instance, every command committed (SQLite WAL, synchronous=FULL) before it is answered.
//! First one client, sequentially (the peers' "durable" mode); then many concurrent clients.
//!
//! `--nodes N` (PostgreSQL) runs N engines on the database, each with its own connection pool
//! and writer connection, as N `onetrip serve` processes have (in one process, without HTTP),
//! the clients spread across them. `--backlog N` measures the timer tick instead: N cases
//! whose limits passed (two timers each), fired by every node's tick at once.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use calendar::Calendar;
use dsl::diagnostic::count;
use engine::{Actor, AnyStore, Command, Engine, Store, Submission, Submitted};
use serde_json::json;

const FLOW: &str = r#"
department window "综合窗口"
department psb    "公安局"
department tax    "税务局"
department hrss   "人社局"
schema applicant { name string pii(name)  age int }
item acceptance "一窗受理" {
  department window
  handling   immediate
  steps      { accept "受理" }
}
item seal "印章刻制" {
  department psb
  handling   immediate
  steps      { handle "办理" }
}
item tax_setup "税务登记" {
  department tax
  handling   immediate
  steps      { handle "办理" }
}
item insurance "社保登记" {
  department hrss
  handling   immediate
  steps      { handle "办理" }
}
item delivery "统一出件" {
  department window
  handling   immediate
  steps      { deliver "出件" }
}
process joint "联办" {
  window window
  flow   { acceptance -> parallel { seal, tax_setup, insurance } -> delivery }
}
process joint_limited "联办（限时）" {
  window window
  sla    1 workday
  flow   { acceptance -> parallel { seal, tax_setup, insurance } -> delivery }
  warn   yellow at 50% of sla, red at overdue
}
"#;

/// The system clock moved back by a number of seconds that can change: the warned preload
/// submits its cases 30 days ago.
struct Movable(std::sync::atomic::AtomicI64);

impl engine::Clock for Movable {
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        chrono::Utc::now() - chrono::Duration::seconds(self.0.load(std::sync::atomic::Ordering::Relaxed))
    }
}

pub struct Options {
    pub db: Option<String>,
    pub clients: usize,
    pub seconds: u64,
    pub instances: usize,
    /// Cases submitted first (left open), to measure with a large store.
    pub preload: usize,
    /// Of those, run on the one-working-day variant 30 days ago, then ticked into warnings.
    pub warned: usize,
    /// Measure the stall analysis (after the preload) instead of commands.
    pub stalls: bool,
    /// Engines sharing the database (PostgreSQL only beyond 1).
    pub nodes: usize,
    /// Measure the firing of this many overdue cases' timers instead of commands.
    pub backlog: usize,
}

/// Submits `total` cases of `flow` from `clients` concurrent clients spread over the nodes,
/// left open.
async fn preload(nodes: &[Arc<Engine<AnyStore>>], clients: usize, total: usize, flow: &str) -> Result<(), String> {
    if total == 0 {
        return Ok(());
    }
    let per_client = total.div_ceil(clients);
    let loaders: Vec<_> = (0..clients)
        .map(|client| {
            let engine = Arc::clone(&nodes[client % nodes.len()]);
            let flow = flow.to_string();
            tokio::spawn(async move {
                for n in 0..per_client.min(total.saturating_sub(client * per_client)) {
                    let mut data = serde_json::Map::new();
                    data.insert("applicant".into(), json!({"name": format!("预载{client}-{n}"), "age": 30}));
                    let submission = Submission { flow: flow.clone(), data, ..Submission::default() };
                    engine.submit(&submission, None).await.map_err(|e| e.to_string())?;
                    if client == 0 && n % (per_client / 10).max(1) == 0 {
                        println!(
                            "  preloaded about {} of {flow}, resident memory {:.0} MiB",
                            count(n * clients, "case", "cases"),
                            rss_mib().unwrap_or(0.0)
                        );
                    }
                }
                Ok::<_, String>(())
            })
        })
        .collect();
    for loader in loaders {
        loader.await.map_err(|e| e.to_string())??;
    }
    Ok(())
}

/// Runs one instance to its end; returns the latency of each command.
async fn instance(engine: &Engine<AnyStore>, n: usize) -> Result<Vec<Duration>, String> {
    let mut latencies = Vec::with_capacity(6);
    let mut data = serde_json::Map::new();
    data.insert("applicant".into(), json!({"name": format!("申请人{n}"), "age": 30}));
    let submission = Submission { flow: "joint".into(), data, ..Submission::default() };
    let started = Instant::now();
    let Submitted::Accepted { case } = engine.submit(&submission, None).await.map_err(|e| e.to_string())? else {
        return Err("refused".into());
    };
    latencies.push(started.elapsed());
    let mut case = *case;
    while let Some(task) = case.tasks.values().next().cloned() {
        let command = Command::Complete { item: task.item.clone(), step: task.step.clone(), next: None };
        let started = Instant::now();
        case = engine
            .act(&case.id, &command, &Actor::department(task.department.clone()), None, None)
            .await
            .map_err(|e| e.to_string())?;
        latencies.push(started.elapsed());
    }
    if latencies.len() != 6 {
        return Err(format!("an instance took {}, not 6", count(latencies.len(), "command", "commands")));
    }
    Ok(latencies)
}

/// The stall analysis on the store as it is: the per-state summary 21 times and the full
/// analysis 5 times, medians reported.
async fn stall_queries(engine: &Engine<AnyStore>) -> Result<(), String> {
    use engine::stalls::StallFilter;
    let filter = StallFilter::default();
    let mut summary = Vec::new();
    let mut waiting = 0;
    for _ in 0..21 {
        let started = Instant::now();
        let states = engine.stalled_states(&filter).await.map_err(|e| e.to_string())?;
        summary.push(started.elapsed());
        waiting = states.iter().map(|s| s.waiting).sum::<u64>();
    }
    let mut full = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        engine.stalls(&filter).await.map_err(|e| e.to_string())?;
        full.push(started.elapsed());
    }
    summary.sort();
    full.sort();
    println!("| query | runs | waiting tasks | median ms | max ms |");
    println!("|---|---|---|---|---|");
    for (name, runs) in [("per-state summary", &summary), ("full stall analysis", &full)] {
        println!(
            "| {name} | {} | {waiting} | {:.2} | {:.2} |",
            runs.len(),
            percentile(runs, 0.5).as_secs_f64() * 1000.0,
            runs.last().copied().unwrap_or_default().as_secs_f64() * 1000.0
        );
    }
    Ok(())
}

/// The supervisor's dashboard on the store as it is, through a real socket: each page 11
/// times, medians reported (the goal: under 100 ms on a 1,000,000-case store).
async fn dashboard_pages(engine: Arc<Engine<AnyStore>>) -> Result<ExitCode, String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let token = server::create_token(engine.store(), &server::Role::Supervisor).await.map_err(|e| e.to_string())?;
    let oldest = engine
        .stalls(&engine::stalls::StallFilter { limit: Some(1), ..Default::default() })
        .await
        .map_err(|e| e.to_string())?
        .longest
        .first()
        .map(|w| w.case_id.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(|e| e.to_string())?;
    let address = listener.local_addr().map_err(|e| e.to_string())?;
    let app = server::router(engine);
    tokio::spawn(async move { axum_serve(listener, app).await });
    let mut pages = vec![
        "/".to_string(),
        "/processes/joint".into(),
        "/processes/joint_limited".into(),
        "/warnings".into(),
        "/departments".into(),
    ];
    pages.extend(oldest.map(|id| format!("/timeline/{id}")));
    println!("\n| page | runs | bytes | median ms | max ms |");
    println!("|---|---|---|---|---|");
    for page in &pages {
        let mut times = Vec::new();
        let mut bytes = 0;
        for _ in 0..11 {
            let started = Instant::now();
            let mut stream = tokio::net::TcpStream::connect(address).await.map_err(|e| e.to_string())?;
            let request = format!(
                "GET {page} HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
            );
            stream.write_all(request.as_bytes()).await.map_err(|e| e.to_string())?;
            let mut answer = Vec::new();
            stream.read_to_end(&mut answer).await.map_err(|e| e.to_string())?;
            times.push(started.elapsed());
            if !answer.starts_with(b"HTTP/1.1 200") {
                return Err(format!("{page} answered {}", String::from_utf8_lossy(&answer[..answer.len().min(200)])));
            }
            bytes = answer.len();
        }
        times.sort();
        println!(
            "| {page} | {} | {bytes} | {:.2} | {:.2} |",
            times.len(),
            percentile(&times, 0.5).as_secs_f64() * 1000.0,
            times.last().copied().unwrap_or_default().as_secs_f64() * 1000.0
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn axum_serve(listener: tokio::net::TcpListener, app: server::Router) {
    let _ = server::serve_router(listener, app).await;
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib: f64 = status.lines().find(|l| l.starts_with("VmRSS:"))?.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// Every node ticks until nothing is due; the timers fired (one event each).
async fn tick_all(nodes: &[Arc<Engine<AnyStore>>]) -> Result<usize, String> {
    let ticks: Vec<_> = nodes
        .iter()
        .map(|engine| {
            let engine = Arc::clone(engine);
            tokio::spawn(async move {
                let mut fired = 0;
                loop {
                    match engine.tick().await.map_err(|e| e.to_string())? {
                        0 => return Ok::<_, String>(fired),
                        n => fired += n,
                    }
                }
            })
        })
        .collect();
    let mut fired = 0;
    for tick in ticks {
        fired += tick.await.map_err(|e| e.to_string())??;
    }
    Ok(fired)
}

pub async fn run(options: Options) -> Result<ExitCode, String> {
    let db = options.db.unwrap_or_else(|| {
        let path = std::env::temp_dir().join(format!("onetrip-bench-{}.db", std::process::id()));
        format!("sqlite://{}", path.display())
    });
    let node_count = options.nodes.max(1);
    if node_count > 1 && !engine::any::is_postgres(&db) {
        return Err("--nodes above 1 needs a PostgreSQL database (--db postgres://…): nodes share it".into());
    }
    let mut loader = dsl::MemoryLoader::default();
    let workspace = dsl::Workspace::single("joint.flow", FLOW, &mut loader);
    let analysis = dsl::check(&workspace);
    let flow = dsl::compile(&analysis.program, "joint").ok_or("the bench flow does not compile")?;
    let limited = dsl::compile(&analysis.program, "joint_limited").ok_or("the bench flow does not compile")?;
    let clock = Arc::new(Movable(std::sync::atomic::AtomicI64::new(0)));
    let calendar = Arc::new(Calendar::official());
    let mut nodes = Vec::new();
    for _ in 0..node_count {
        let store = AnyStore::open(&db).await.map_err(|e| e.to_string())?;
        nodes.push(Arc::new(Engine::new(store, Arc::clone(&calendar), Arc::clone(&clock) as Arc<dyn engine::Clock>)));
    }
    let engine = Arc::clone(&nodes[0]);
    engine.deploy(&flow).await.map_err(|e| e.to_string())?;
    engine.deploy(&limited).await.map_err(|e| e.to_string())?;
    println!(
        "onetrip bench on {}{}: 5 tasks an instance (accept, 3 in parallel, deliver), durable commits\n",
        engine::any::redacted(&db),
        if node_count > 1 { format!(", {node_count} nodes") } else { String::new() }
    );

    if options.backlog > 0 {
        // Submitted 30 days ago on the one-working-day variant: both its timers (yellow, red)
        // are long due when the clock comes back.
        clock.0.store(30 * 86_400, std::sync::atomic::Ordering::Relaxed);
        let started = Instant::now();
        preload(&nodes, options.clients.max(1), options.backlog, "joint_limited").await?;
        println!("submitted {} in {:.0} s", count(options.backlog, "case", "cases"), started.elapsed().as_secs_f64());
        clock.0.store(0, std::sync::atomic::Ordering::Relaxed);
        let started = Instant::now();
        let fired = tick_all(&nodes).await?;
        let elapsed = started.elapsed().as_secs_f64();
        let left = engine.store().due_timers(&chrono::Utc::now().to_rfc3339(), 1).await.map_err(|e| e.to_string())?;
        println!("| backlog | nodes | timers fired | s | timers/s | left due |");
        println!("|---|---|---|---|---|---|");
        println!(
            "| {} overdue cases | {node_count} | {fired} | {elapsed:.1} | {:.0} | {} |",
            options.backlog,
            fired as f64 / elapsed,
            left.len()
        );
        return Ok(if left.is_empty() && fired == 2 * options.backlog { ExitCode::SUCCESS } else { ExitCode::FAILURE });
    }

    if options.preload > 0 {
        let started = Instant::now();
        let clients = options.clients.max(1);
        let warned = options.warned.min(options.preload);
        // The warned cases 30 days ago, so that their limits have passed; the rest now.
        clock.0.store(30 * 86_400, std::sync::atomic::Ordering::Relaxed);
        preload(&nodes, clients, warned, "joint_limited").await?;
        clock.0.store(0, std::sync::atomic::Ordering::Relaxed);
        preload(&nodes, clients, options.preload - warned, "joint").await?;
        if warned > 0 {
            let ticking = Instant::now();
            let fired = tick_all(&nodes).await?;
            println!(
                "fired {fired} timers of {warned} overdue cases (their warnings) in {:.0} s",
                ticking.elapsed().as_secs_f64()
            );
        }
        println!(
            "preloaded {} open cases in {:.0} s; resident memory {:.0} MiB\n",
            options.preload,
            started.elapsed().as_secs_f64(),
            rss_mib().unwrap_or(0.0)
        );
    }

    if options.stalls {
        stall_queries(&engine).await?;
        return dashboard_pages(Arc::clone(&engine)).await;
    }

    // One client, each command committed before the next.
    let started = Instant::now();
    let mut latencies = Vec::new();
    for n in 0..options.instances {
        latencies.extend(instance(&engine, n).await?);
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort();
    println!("| mode | nodes | clients | instances | s | instances/s | tasks/s | commands/s | p50 ms | p99 ms |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    println!(
        "| sequential | 1 | 1 | {} | {elapsed:.2} | {:.0} | {:.0} | {:.0} | {:.2} | {:.2} |",
        options.instances,
        options.instances as f64 / elapsed,
        5.0 * options.instances as f64 / elapsed,
        6.0 * options.instances as f64 / elapsed,
        percentile(&latencies, 0.5).as_secs_f64() * 1000.0,
        percentile(&latencies, 0.99).as_secs_f64() * 1000.0,
    );

    // Many clients for a fixed time.
    let deadline = Instant::now() + Duration::from_secs(options.seconds);
    let started = Instant::now();
    let workers: Vec<_> = (0..options.clients)
        .map(|client| {
            let engine = Arc::clone(&nodes[client % nodes.len()]);
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut n = 0;
                while Instant::now() < deadline {
                    latencies.extend(instance(&engine, client * 1_000_000 + n).await?);
                    n += 1;
                }
                Ok::<_, String>((n, latencies))
            })
        })
        .collect();
    let mut instances = 0;
    let mut latencies = Vec::new();
    for worker in workers {
        let (n, l) = worker.await.map_err(|e| e.to_string())??;
        instances += n;
        latencies.extend(l);
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort();
    println!(
        "| concurrent | {node_count} | {} | {instances} | {elapsed:.2} | {:.0} | {:.0} | {:.0} | {:.2} | {:.2} |",
        options.clients,
        instances as f64 / elapsed,
        5.0 * instances as f64 / elapsed,
        latencies.len() as f64 / elapsed,
        percentile(&latencies, 0.5).as_secs_f64() * 1000.0,
        percentile(&latencies, 0.99).as_secs_f64() * 1000.0,
    );
    if let Some(rss) = rss_mib() {
        println!("\nresident memory: {rss:.0} MiB");
    }
    Ok(ExitCode::SUCCESS)
}
