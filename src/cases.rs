//! The engine commands: deploy, case submit|act|show|history|tasks, and the demo.

use std::future::Future;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use calendar::Calendar;
use clap::Subcommand;
use dsl::compile::{Event as Trigger, State};
use dsl::diagnostic::count;
use dsl::model::Pii;
use dsl::{CompiledFlow, MemoryLoader, Workspace};
use engine::{
    Actor, AnyStore, CaseState, Command, CommandError, Engine, EngineError, Status, Submission, Submitted, SystemClock,
};
use petgraph::stable_graph::NodeIndex;
use petgraph::visit::EdgeRef;
use serde_json::json;

use crate::flows::{load, print_diagnostics};

pub const DEFAULT_DB: &str = "sqlite://onetrip.db";

#[derive(Subcommand)]
pub enum CaseCommand {
    /// Submit a case: `--data` is a JSON file with the value of each schema, e.g.
    /// `{"applicant": {...}}`.
    Submit {
        #[arg(long)]
        flow: String,
        #[arg(long)]
        data: PathBuf,
        /// Names of the materials supplied.
        #[arg(long, value_delimiter = ',')]
        materials: Vec<String>,
        #[arg(long)]
        key: Option<String>,
        #[arg(long, default_value = DEFAULT_DB)]
        db: String,
    },
    /// Act on a case: `--command` is JSON, e.g.
    /// `{"command":"complete","item":"company_registration","step":"accept"}`.
    Act {
        case: String,
        /// Who acts: a department (`samr`), an officer of it (`samr/li.wei`) or `supervisor`;
        /// without it the applicant acts.
        #[arg(long)]
        by: Option<String>,
        #[arg(long)]
        command: String,
        #[arg(long)]
        key: Option<String>,
        /// Refuse the command if the case is no longer at this version.
        #[arg(long)]
        expected_version: Option<u64>,
        #[arg(long, default_value = DEFAULT_DB)]
        db: String,
    },
    Show {
        case: String,
        #[arg(long, default_value = DEFAULT_DB)]
        db: String,
    },
    History {
        case: String,
        #[arg(long, default_value = DEFAULT_DB)]
        db: String,
    },
    /// A department's open tasks.
    Tasks {
        department: String,
        #[arg(long, default_value = DEFAULT_DB)]
        db: String,
    },
}

/// Runs `future` on a new runtime and returns its value.
pub fn block_on_value<T>(future: impl Future<Output = Result<T, String>>) -> Result<T, String> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?
        .block_on(future)
}

pub fn block_on(future: impl Future<Output = Result<ExitCode, String>>) -> Result<ExitCode, String> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?
        .block_on(future)
}

/// `ONETRIP_CLOCK=<RFC 3339>` starts the clock at that instant (for tests and demonstrations
/// of deadlines); otherwise the system clock.
fn clock() -> Result<Arc<dyn engine::Clock>, String> {
    match std::env::var("ONETRIP_CLOCK") {
        Ok(at) => {
            let at = chrono::DateTime::parse_from_rfc3339(&at).map_err(|e| format!("ONETRIP_CLOCK `{at}`: {e}"))?;
            Ok(Arc::new(engine::ShiftedClock::starting_at(at.with_timezone(&chrono::Utc))))
        }
        Err(_) => Ok(Arc::new(SystemClock)),
    }
}

pub(crate) async fn open(db: &str) -> Result<Engine<AnyStore>, String> {
    let store = AnyStore::open(db).await.map_err(|e| format!("cannot open `{}`: {e}", engine::any::redacted(db)))?;
    Ok(Engine::new(store, Arc::new(Calendar::official()), clock()?))
}

fn json_out(value: &impl serde::Serialize) -> Result<(), String> {
    println!("{}", serde_json::to_string_pretty(value).map_err(|e| e.to_string())?);
    Ok(())
}

pub async fn serve(db: &str, listen: &str) -> Result<ExitCode, String> {
    let engine = open(db).await?;
    let listener =
        tokio::net::TcpListener::bind(listen).await.map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    eprintln!(
        "onetrip serving {} ({}) on http://{listen} (OpenAPI at /openapi.json, the supervisor's dashboard at /)",
        engine::any::redacted(db),
        engine.store().backend()
    );
    crate::traces::follow(db).await?;
    server::serve(engine, listener, std::time::Duration::from_secs(5)).await?;
    Ok(ExitCode::SUCCESS)
}

/// Serves the supervisor's dashboard of a database on this machine and opens it in a browser,
/// signed in with a token that only this process knows.
pub async fn dashboard(db: &str, listen: &str, open_browser: bool) -> Result<ExitCode, String> {
    let engine = open(db).await?;
    let listener =
        tokio::net::TcpListener::bind(listen).await.map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let address = listener.local_addr().map_err(|e| e.to_string())?;
    let token = server::random_token().map_err(|e| e.to_string())?;
    let url = format!("http://{address}/signin/local?token={token}");
    eprintln!(
        "onetrip dashboard of {}: {url}\n(the link signs you in; it works while this command runs — Ctrl-C stops it)",
        engine::any::redacted(db)
    );
    if open_browser {
        // Best effort: where no browser opener exists, the link above is enough.
        for opener in ["xdg-open", "open"] {
            let opened = std::process::Command::new(opener)
                .arg(&url)
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn();
            if opened.is_ok() {
                break;
            }
        }
    }
    server::serve_dashboard(engine, listener, token).await?;
    Ok(ExitCode::SUCCESS)
}

pub async fn token(
    role: &str,
    department: Option<String>,
    officer: Option<String>,
    db: &str,
) -> Result<ExitCode, String> {
    use server::Role;
    if officer.is_some() && role != "officer" {
        return Err("only an officer token names an officer".into());
    }
    let role = match (role, department) {
        ("admin", None) => Role::Admin,
        ("platform", None) => Role::Platform,
        ("supervisor", None) => Role::Supervisor,
        ("officer", Some(department)) => Role::Officer { department, officer },
        ("officer", None) => return Err("an officer token needs `--department`".into()),
        (_, Some(_)) => return Err("only an officer token has a department".into()),
        (other, None) => return Err(format!("unknown role `{other}`: admin, platform, officer or supervisor")),
    };
    let engine = open(db).await?;
    println!("{}", server::create_token(engine.store(), &role).await.map_err(|e| e.to_string())?);
    Ok(ExitCode::SUCCESS)
}

pub async fn deploy(files: &[PathBuf], db: &str) -> Result<ExitCode, String> {
    let programs = load(files)?;
    if programs.iter().any(|c| c.analysis.has_errors()) {
        print_diagnostics(&programs);
        return Ok(ExitCode::FAILURE);
    }
    let engine = open(db).await?;
    for checked in &programs {
        for process in &checked.analysis.program.processes {
            let Some(flow) = dsl::compile(&checked.analysis.program, &process.name) else { continue };
            let new = engine.deploy(&flow).await.map_err(|e| e.to_string())?;
            println!("{} {} {}", if new { "deployed" } else { "unchanged" }, flow.name, &flow.version[..12]);
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn run(command: CaseCommand) -> Result<ExitCode, String> {
    match command {
        CaseCommand::Submit { flow, data, materials, key, db } => {
            let text = std::fs::read_to_string(&data).map_err(|e| format!("cannot read `{}`: {e}", data.display()))?;
            let data: serde_json::Map<String, serde_json::Value> =
                serde_json::from_str(&text).map_err(|e| format!("`{}` is not a JSON object: {e}", data.display()))?;
            let engine = open(&db).await?;
            let answer = engine
                .submit(&Submission { flow, data, materials, licences: Vec::new() }, key.as_deref())
                .await
                .map_err(|e| e.to_string())?;
            json_out(&answer)?;
            Ok(if matches!(answer, Submitted::Accepted { .. }) { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
        CaseCommand::Act { case, by, command, key, expected_version, db } => {
            let command: Command = serde_json::from_str(&command).map_err(|e| format!("not a command: {e}"))?;
            let actor = by.as_deref().map_or(Actor::Applicant, Actor::parse);
            let engine = open(&db).await?;
            let state = engine
                .act(&case, &command, &actor, key.as_deref(), expected_version)
                .await
                .map_err(|e| e.to_string())?;
            json_out(&state)?;
            Ok(ExitCode::SUCCESS)
        }
        CaseCommand::Show { case, db } => {
            json_out(&open(&db).await?.case(&case).await.map_err(|e| e.to_string())?)?;
            Ok(ExitCode::SUCCESS)
        }
        CaseCommand::History { case, db } => {
            json_out(&open(&db).await?.history(&case).await.map_err(|e| e.to_string())?)?;
            Ok(ExitCode::SUCCESS)
        }
        CaseCommand::Tasks { department, db } => {
            json_out(&open(&db).await?.tasks(&department).await.map_err(|e| e.to_string())?)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

// ------------------------------------------------------------------ the demo

/// The 开办企业 example, built into the binary so that the demo runs anywhere.
const EXAMPLE: &[(&str, &str)] = &[
    ("start_business.flow", include_str!("../examples/start-business/start_business.flow")),
    ("departments.flow", include_str!("../examples/start-business/departments.flow")),
    ("schema.flow", include_str!("../examples/start-business/schema.flow")),
    ("samr.flow", include_str!("../examples/start-business/samr.flow")),
    ("psb.flow", include_str!("../examples/start-business/psb.flow")),
    ("tax.flow", include_str!("../examples/start-business/tax.flow")),
    ("hrss.flow", include_str!("../examples/start-business/hrss.flow")),
    ("hpf.flow", include_str!("../examples/start-business/hpf.flow")),
    ("bank.flow", include_str!("../examples/start-business/bank.flow")),
];

fn applicant(name: &str, id: &str, age: i64, employees: i64, bank: bool) -> Submission {
    let mut data = serde_json::Map::new();
    data.insert(
        "applicant".into(),
        json!({
            "name": name, "id_number": id, "phone": "13812348000", "age": age, "credit_ok": true, "is_legal_rep": true,
            "company": {
                "name": "杭州一趟科技有限公司", "kind": "llc", "capital": 100.0, "address": "杭州市西湖区文三路1号",
                "premises": "leased", "industry": "6513", "employees": employees, "public_offering": false,
                "bank_reservation": bank,
                "shareholders": [{"name": name, "id_number": id, "kind": "person", "subscribed": 100.0}],
                "officers": [{"name": name, "id_number": id, "role": "legal_rep"}]
            }
        }),
    );
    Submission {
        flow: "start_business".into(),
        data,
        materials: vec!["application_form".into(), "articles".into()],
        licences: Vec::new(),
    }
}

fn who(submission: &Submission) -> String {
    let person = &submission.data["applicant"];
    let text = |field: &str| person[field].as_str().unwrap_or_default().to_string();
    format!("{} ({})", Pii::Name.mask(&text("name")), Pii::Id.mask(&text("id_number")))
}

fn label(flow: &CompiledFlow, item: &str, step: &str) -> String {
    let node = flow.graph.node_weights().find_map(|s| match s {
        State::Step { item: i, step: st, label, .. } if i == item && st == step => {
            Some(label.clone().unwrap_or_else(|| st.clone()))
        }
        _ => None,
    });
    let title = flow.items.iter().find(|i| i.name == item).map_or(item, |i| i.title.as_str());
    format!("{title} · {}", node.unwrap_or_else(|| step.to_string()))
}

/// Completes open tasks, first to last, until the case ends or `stop` says so.
/// With `verbose`, prints each step and each fan-out; otherwise a count at the end.
async fn run_tasks(
    engine: &Engine<AnyStore>,
    flow: &CompiledFlow,
    mut case: CaseState,
    verbose: bool,
    stop: impl Fn(&CaseState) -> bool,
) -> Result<CaseState, String> {
    let mut steps = 0;
    while !case.status.is_final() && !stop(&case) {
        let Some((node, task)) = case.tasks.iter().next().map(|(n, t)| (*n, t.clone())) else { break };
        // Where several steps follow, take the first the flow names.
        let next = flow
            .graph
            .edges(NodeIndex::new(node as usize))
            .filter(|e| e.weight().event == Trigger::Complete)
            .filter_map(|e| match &flow.graph[e.target()] {
                State::Step { step, .. } => Some(step.clone()),
                _ => None,
            })
            .last();
        let command = Command::Complete { item: task.item.clone(), step: task.step.clone(), next: None };
        let actor = Actor::department(task.department.clone());
        let result = match engine.act(&case.id, &command, &actor, None, None).await {
            Err(EngineError::Command(CommandError::ChooseNext { .. })) => {
                let command = Command::Complete { item: task.item.clone(), step: task.step.clone(), next };
                engine.act(&case.id, &command, &actor, None, None).await
            }
            other => other,
        };
        let before = case.tasks.len();
        case = result.map_err(|e| e.to_string())?;
        steps += 1;
        if verbose {
            println!("    {:<6} {}", task.department, label(flow, &task.item, &task.step));
            if case.tasks.len() > before {
                println!("           → in parallel: {}", tasks_line(&case));
            }
        }
    }
    if !verbose {
        println!("   … {} done by the departments", count(steps, "step", "steps"));
    }
    Ok(case)
}

fn tasks_line(case: &CaseState) -> String {
    let tasks: Vec<String> = case.tasks.values().map(|t| format!("{}.{}@{}", t.item, t.step, t.department)).collect();
    if tasks.is_empty() {
        "no open tasks".into()
    } else {
        format!("open: {}", tasks.join(", "))
    }
}

pub async fn demo(db: Option<String>) -> Result<ExitCode, String> {
    let db = db.unwrap_or_else(|| {
        let path = std::env::temp_dir().join(format!("onetrip-demo-{}.db", std::process::id()));
        format!("sqlite://{}", path.display())
    });
    let backend = if engine::any::is_postgres(&db) { "PostgreSQL" } else { "SQLite" };
    println!("onetrip demo: 开办企业一件事 on {backend} at {}\n", engine::any::redacted(&db));
    let mut loader = MemoryLoader::new(EXAMPLE.iter().copied());
    let workspace = Workspace::load(&["start_business.flow".to_string()], &mut loader);
    let analysis = dsl::check(&workspace);
    if analysis.has_errors() {
        return Err("the built-in example does not check".into());
    }
    let flow = dsl::compile(&analysis.program, "start_business").ok_or("no start_business process")?;
    let report =
        dsl::analysis::report(&analysis.program, analysis.program.process("start_business").ok_or("no process")?);
    let engine = open(&db).await?;
    let new = engine.deploy(&flow).await.map_err(|e| e.to_string())?;
    println!(
        "{} {} version {}: {}, {}, {} asked of {}, {}, {}\n",
        if new { "deployed" } else { "already deployed" },
        flow.name,
        &flow.version[..12],
        count(report.items, "item", "items"),
        count(report.departments.len(), "department", "departments"),
        count(report.materials_asked, "material", "materials"),
        report.materials_total,
        count(report.days, "working day", "working days"),
        count(report.trips, "trip", "trips")
    );

    println!("1. The happy path: a company with staff and a bank account booked.");
    let zhang = applicant("张三", "11010519491231002X", 35, 3, true);
    let Submitted::Accepted { case } = engine.submit(&zhang, Some("demo-1")).await.map_err(|e| e.to_string())? else {
        return Err("the first applicant should be accepted".into());
    };
    println!("   {} submits: case {}; {}", who(&zhang), case.id, tasks_line(&case));
    let case = run_tasks(&engine, &flow, *case, true, |_| false).await?;
    let case = engine
        .act(&case.id, &Command::Rate { score: 5 }, &Actor::Applicant, None, None)
        .await
        .map_err(|e| e.to_string())?;
    let events = engine.history(&case.id).await.map_err(|e| e.to_string())?.len();
    println!("   {:?}, rated 5 (非常满意), {} in the audit trail\n", case.status, count(events, "event", "events"));

    println!("2. A retried submission (same idempotency key) gets the same case back.");
    let again = engine.submit(&zhang, Some("demo-1")).await.map_err(|e| e.to_string())?;
    if let Submitted::Accepted { case: again } = again {
        println!("   case {} again, nothing new written\n", again.id);
    }

    println!("3. Eligibility refused, with the reason in the rule's own words.");
    let minor = applicant("李四", "330106200811260012", 17, 0, false);
    match engine.submit(&minor, None).await.map_err(|e| e.to_string())? {
        Submitted::Refused { reasons } => {
            for reason in reasons {
                let failing: Vec<&str> = reason.failing.iter().map(|c| c.source.as_str()).collect();
                println!("   {}: refused, `{}` does not hold", who(&minor), failing.join("`, `"));
                if let Some(message) = reason.message {
                    println!("   message: {message}");
                }
            }
        }
        Submitted::Accepted { .. } => return Err("a 17-year-old should be refused".into()),
    }
    println!();

    println!("4. 补正: the window asks for every missing material in one notice, then goes on.");
    let wang = applicant("王五", "440524188001010014", 40, 0, false);
    let Submitted::Accepted { case } = engine.submit(&wang, None).await.map_err(|e| e.to_string())? else {
        return Err("accepted".into());
    };
    let task = case.tasks.values().next().cloned().ok_or("a first task")?;
    let request = Command::RequestSupplement {
        item: task.item.clone(),
        step: task.step.clone(),
        materials: vec!["公司章程（签字页）".into(), "住所使用证明".into()],
    };
    let officer = Actor::department(task.department.clone());
    let waiting = engine.act(&case.id, &request, &officer, None, None).await.map_err(|e| e.to_string())?;
    let asked = waiting.supplement.as_ref().map(|(_, m)| m.join("、")).unwrap_or_default();
    println!("   {} asks for {asked}: case {:?}", task.department, waiting.status);
    let blocked = engine
        .act(
            &case.id,
            &Command::Complete { item: task.item.clone(), step: task.step.clone(), next: None },
            &officer,
            None,
            None,
        )
        .await;
    if let Err(e) = blocked {
        println!("   completing the step meanwhile is refused: {e}");
    }
    let resumed =
        engine.act(&case.id, &Command::SupplementReceived, &officer, None, None).await.map_err(|e| e.to_string())?;
    println!("   materials received: case {:?}", resumed.status);
    let done = run_tasks(&engine, &flow, resumed, false, |_| false).await?;
    println!("   {:?}\n", done.status);

    println!("5. 退回: the reviewer sends the case back to acceptance.");
    let zhao = applicant("赵六", "11010519491231002X", 50, 0, false);
    let Submitted::Accepted { case } = engine.submit(&zhao, None).await.map_err(|e| e.to_string())? else {
        return Err("accepted".into());
    };
    let at_review = run_tasks(&engine, &flow, *case, false, |c| c.tasks.values().any(|t| t.step == "review")).await?;
    if let Some(task) = at_review.tasks.values().find(|t| t.step == "review").cloned() {
        let back = Command::Return { item: task.item.clone(), step: "review".into(), to: "accept".into() };
        let returned = engine
            .act(&at_review.id, &back, &Actor::department(task.department.clone()), None, None)
            .await
            .map_err(|e| e.to_string())?;
        println!("   returned: {}", tasks_line(&returned));
        let done = run_tasks(&engine, &flow, returned, false, |_| false).await?;
        println!("   {:?}\n", done.status);
    }

    println!("6. The applicant withdraws; nothing more can be done on the case.");
    let Submitted::Accepted { case } = engine.submit(&zhao, None).await.map_err(|e| e.to_string())? else {
        return Err("accepted".into());
    };
    let withdrawn =
        engine.act(&case.id, &Command::Withdraw, &Actor::Applicant, None, None).await.map_err(|e| e.to_string())?;
    let task_after = withdrawn.tasks.is_empty();
    let refused = engine.act(&case.id, &Command::Withdraw, &Actor::Applicant, None, None).await;
    println!(
        "   {:?} (tasks cleared: {task_after}); again: {}",
        withdrawn.status,
        refused.err().map(|e| e.to_string()).unwrap_or_default()
    );
    debug_assert_eq!(withdrawn.status, Status::Withdrawn);

    println!("\nEverything above is in {db}: try `onetrip case history {} --db {db}`.", case.id);
    crate::traces::flush(&engine).await;
    Ok(ExitCode::SUCCESS)
}
