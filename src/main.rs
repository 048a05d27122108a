//! `onetrip`: check, format, draw, report and compile government service flows.
//!
//! A thin shell over the `dsl` crate: it reads files, calls the pure core and prints.

// Rule evaluation and the engine allocate many small values; mimalloc makes both faster
// (the rules and engine benchmarks report with it).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod bench;
mod calendar_cmd;
mod cases;
mod flows;
mod scenarios;
mod stalls;
mod traces;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use dsl::diagnostic::Code;
use dsl::render;
use flows::{compiled, format_files, load, print_diagnostics, program_declaring, report_table, same_json};

#[derive(Parser)]
#[command(name = "onetrip", version, about = "最多跑一次 — flows for government service items and joint processes")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check flow files (and what they import); exit 1 on errors.
    Check {
        /// Files or folders of `.flow` files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[arg(long, value_enum, default_value_t = DiagnosticFormat::Human)]
        format: DiagnosticFormat,
        /// Also warn where a published guide would be incomplete (W0004).
        #[arg(long)]
        guide: bool,
    },
    /// Format flow files in place, or with `--check` list those that are not formatted.
    Fmt {
        #[arg(long)]
        check: bool,
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Draw a process (or item) as a graph; with `--heat`, the deployed process as an SVG heat
    /// map of the cases waiting in each state.
    Graph {
        /// The process or item to draw.
        name: String,
        #[arg(required_unless_present = "heat", conflicts_with = "heat")]
        files: Vec<PathBuf>,
        /// dot (default), mermaid or svg; `--heat` draws SVG.
        #[arg(long, value_enum)]
        format: Option<GraphFormat>,
        /// Read the latest deployed version of the process and its waiting cases from `--db`.
        #[arg(long)]
        heat: bool,
        #[arg(long, default_value = cases::DEFAULT_DB, requires = "heat")]
        db: String,
        /// Write to this file instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// The reform figures of a process: items, departments, steps, materials, days, trips.
    Report {
        name: String,
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[arg(long, value_enum, default_value_t = ReportFormat::Table)]
        format: ReportFormat,
    },
    /// 办事指南: the guide of a process (its own, then each item's) or of an item, from the same
    /// checked files the engine runs.
    Guide {
        name: String,
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[arg(long, value_enum, default_value_t = GuideFormat::Md)]
        format: GuideFormat,
        /// Write `NAME.md` (or `.json`, or the HTML site) into this folder instead of standard
        /// output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// 一次告知: for one applicant, whether they are eligible, the items their case will run and
    /// the one list of what to bring (shared data and licences left out).
    Notice {
        name: String,
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// The applicant's data: a JSON object with the value of each schema by name, as
        /// `case submit --data` takes it.
        #[arg(long)]
        facts: PathBuf,
        #[arg(long, value_enum, default_value_t = GuideFormat::Md)]
        format: GuideFormat,
    },
    /// 实施清单: one row per item of the files (code, name, type, department, limits, visits,
    /// fee, online, basis), for a provincial platform to import.
    Items {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[arg(long, value_enum, default_value_t = ItemsFormat::Csv)]
        format: ItemsFormat,
    },
    /// The compiled flow (state machine, items, content hash) as JSON.
    Compile {
        name: String,
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Explain a diagnostic code, or list them all.
    Explain { code: Option<String> },
    /// Working-day arithmetic on the official holiday calendar.
    #[command(subcommand)]
    Calendar(calendar_cmd::CalendarCommand),
    /// Deploy every process of flow files to a database.
    Deploy {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[arg(long, default_value = cases::DEFAULT_DB)]
        db: String,
    },
    /// Submit, act on and read cases in a database.
    #[command(subcommand)]
    Case(cases::CaseCommand),
    /// Serve the HTTP API (JSON, OpenAPI at /openapi.json) on a database.
    Serve {
        #[arg(long, default_value = cases::DEFAULT_DB)]
        db: String,
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: String,
    },
    /// Open the supervisor's dashboard of a database in a browser (served on this machine
    /// while the command runs; `onetrip serve` serves it too, at `/`).
    Dashboard {
        #[arg(long, default_value = cases::DEFAULT_DB)]
        db: String,
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: String,
        /// Print the link only; do not start a browser.
        #[arg(long)]
        no_browser: bool,
    },
    /// Create an API token (printed once; only its digest is stored).
    Token {
        /// admin, platform, officer or supervisor.
        #[arg(long)]
        role: String,
        /// The officer's department.
        #[arg(long)]
        department: Option<String>,
        /// The officer the token is for (tasks handed to them by 转办 are theirs alone).
        #[arg(long)]
        officer: Option<String>,
        #[arg(long, default_value = cases::DEFAULT_DB)]
        db: String,
    },
    /// Measure the engine on the peers' joint workload: one client, then many.
    Bench {
        /// The database (default: a new file in the temporary folder).
        #[arg(long)]
        db: Option<String>,
        #[arg(long, default_value_t = 100)]
        clients: usize,
        /// How long the concurrent run lasts.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Instances in the sequential run.
        #[arg(long, default_value_t = 500)]
        instances: usize,
        /// Open cases to submit before measuring (e.g. 1000000, to see memory stay flat).
        #[arg(long, default_value_t = 0)]
        preload: usize,
        /// Of the preloaded cases, how many run a variant of the workload with a one-working-day
        /// limit, submitted 30 days ago and then ticked, so that each raises its yellow and red
        /// warnings (for the supervisor's figures on a store full of warnings).
        #[arg(long, default_value_t = 0)]
        warned: usize,
        /// Time the stall analysis on the (preloaded) store instead of the commands.
        #[arg(long)]
        stalls: bool,
        /// Engines sharing the database, each with its own connections, as `onetrip serve`
        /// processes would (PostgreSQL only beyond 1); the clients are spread across them.
        #[arg(long, default_value_t = 1)]
        nodes: usize,
        /// Instead of the commands: submit this many cases whose limits then lie 30 days in the
        /// past (two timers each), and time every node's tick firing them.
        #[arg(long, default_value_t = 0)]
        backlog: usize,
    },
    /// The supervisor's stall analysis: where cases wait, departments, warnings, processes.
    Stalls {
        /// Only this process.
        #[arg(long)]
        process: Option<String>,
        /// Only this department.
        #[arg(long)]
        department: Option<String>,
        /// How many longest waits and warnings to list.
        #[arg(long, default_value_t = 20)]
        limit: u32,
        #[arg(long, value_enum, default_value_t = stalls::StallFormat::Table)]
        format: stalls::StallFormat,
        #[arg(long, default_value = cases::DEFAULT_DB)]
        db: String,
    },
    /// Run scenario files (JSON: a submission, commands at given instants, what must hold at
    /// the end) against the processes of flow files, on a temporary SQLite file.
    Test {
        /// A flow file (or folder) declaring the scenarios' processes; repeat for more.
        #[arg(long, required = true)]
        flows: Vec<PathBuf>,
        /// Scenario files, or folders of `.json` scenarios.
        #[arg(required = true)]
        scenarios: Vec<PathBuf>,
        /// Run them on this database (a SQLite path or `postgres://…`) instead of a temporary
        /// SQLite file.
        #[arg(long)]
        db: Option<String>,
    },
    /// The national "one thing" processes of the stdlib: list, show, report, check, test.
    #[command(subcommand)]
    Stdlib(scenarios::StdlibCommand),
    /// Deploy the 开办企业 example to a fresh SQLite file and run cases through every path.
    Demo {
        /// The database (default: a new file in the temporary folder).
        #[arg(long)]
        db: Option<String>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum DiagnosticFormat {
    Human,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
enum GraphFormat {
    Dot,
    Mermaid,
    Svg,
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum ReportFormat {
    Table,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum GuideFormat {
    Md,
    Json,
    /// A static site (index, one page per guide, flow charts): needs `--out`.
    Html,
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum ItemsFormat {
    Csv,
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli.command) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
    }
}

fn run(command: Command) -> Result<ExitCode, String> {
    match command {
        Command::Calendar(command) => calendar_cmd::run(command),
        Command::Test { flows, scenarios, db } => scenarios::test(&flows, &scenarios, db.as_deref()),
        Command::Stdlib(command) => scenarios::stdlib(command),
        Command::Deploy { files, db } => cases::block_on(cases::deploy(&files, &db)),
        Command::Case(command) => cases::block_on(cases::run(command)),
        Command::Demo { db } => cases::block_on(cases::demo(db)),
        Command::Bench { db, clients, seconds, instances, preload, warned, stalls, nodes, backlog } => {
            cases::block_on(bench::run(bench::Options {
                db,
                clients,
                seconds,
                instances,
                preload,
                warned,
                stalls,
                nodes,
                backlog,
            }))
        }
        Command::Stalls { process, department, limit, format, db } => {
            let filter = engine::stalls::StallFilter { process, department, limit: Some(limit), ..Default::default() };
            cases::block_on(stalls::run(filter, format, &db))
        }
        Command::Serve { db, listen } => cases::block_on(cases::serve(&db, &listen)),
        Command::Dashboard { db, listen, no_browser } => cases::block_on(cases::dashboard(&db, &listen, !no_browser)),
        Command::Token { role, department, officer, db } => {
            cases::block_on(cases::token(&role, department, officer, &db))
        }
        Command::Check { files, format, guide } => {
            let mut programs = load(&files)?;
            if guide {
                for checked in &mut programs {
                    let lints = dsl::analysis::guide_lint(&checked.analysis.program);
                    checked.analysis.diagnostics.extend(lints);
                }
            }
            match format {
                DiagnosticFormat::Human => print_diagnostics(&programs),
                DiagnosticFormat::Json => {
                    let mut json = Vec::new();
                    for checked in &programs {
                        for d in &checked.analysis.diagnostics {
                            let d = render::to_json(&checked.workspace, d);
                            if !json.iter().any(|seen: &render::JsonDiagnostic| same_json(seen, &d)) {
                                json.push(d);
                            }
                        }
                    }
                    println!("{}", serde_json::to_string_pretty(&json).map_err(|e| e.to_string())?);
                }
            }
            Ok(if programs.iter().any(|c| c.analysis.has_errors()) { ExitCode::FAILURE } else { ExitCode::SUCCESS })
        }
        Command::Fmt { check, files } => format_files(&files, check),
        Command::Graph { name, files, format, heat, db, out } => {
            let picture = if heat {
                if !matches!(format, None | Some(GraphFormat::Svg)) {
                    return Err("`--heat` draws SVG only".into());
                }
                cases::block_on_value(stalls::heat_map(&name, &db))?
            } else {
                let Some(flow) = compiled(&name, &files)? else { return Ok(ExitCode::FAILURE) };
                match format.unwrap_or(GraphFormat::Dot) {
                    GraphFormat::Dot => dsl::graph::to_dot(&flow),
                    GraphFormat::Mermaid => dsl::graph::to_mermaid(&flow),
                    GraphFormat::Svg => diagram::flow::svg(&flow, &diagram::flow::Options::default()),
                }
            };
            match out {
                Some(path) => {
                    std::fs::write(&path, picture).map_err(|e| format!("cannot write `{}`: {e}", path.display()))?
                }
                None => print!("{picture}"),
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Report { name, files, format } => {
            let Some(checked) = program_declaring(&name, &files)? else { return Ok(ExitCode::FAILURE) };
            let program = &checked.analysis.program;
            let process = program.process(&name).ok_or_else(|| format!("`{name}` is an item, not a process"))?;
            let report = dsl::analysis::report(program, process);
            match format {
                ReportFormat::Json => println!("{}", serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?),
                ReportFormat::Table => print!("{}", report_table(&report)),
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Guide { name, files, format, out } => flows::guide(&name, &files, format, out.as_deref()),
        Command::Items { files, format } => flows::items(&files, format),
        Command::Notice { name, files, facts, format } => flows::notice(&name, &files, &facts, format),
        Command::Compile { name, files } => {
            let Some(flow) = compiled(&name, &files)? else { return Ok(ExitCode::FAILURE) };
            println!("{}", serde_json::to_string_pretty(&flow).map_err(|e| e.to_string())?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Explain { code } => {
            let codes: Vec<Code> = match code {
                Some(wanted) => {
                    let found: Vec<Code> =
                        Code::ALL.iter().copied().filter(|c| c.as_str().eq_ignore_ascii_case(&wanted)).collect();
                    if found.is_empty() {
                        return Err(format!("no diagnostic code `{wanted}`; `onetrip explain` lists them"));
                    }
                    found
                }
                None => Code::ALL.to_vec(),
            };
            for code in &codes {
                println!("{code}  {}", code.explain());
            }
            if codes.iter().any(|c| matches!(c, Code::UnknownFunction | Code::ArgumentCount | Code::TypeMismatch)) {
                println!("\nFunctions rules can call:");
                for f in dsl::cel::types::FUNCTIONS {
                    let call = match f.receiver {
                        Some(r) => format!("{r}.{}({})", f.name, f.params.join(", ")),
                        None => format!("{}({})", f.name, f.params.join(", ")),
                    };
                    println!("  {} -> {}\n      {}", call, f.result, f.doc);
                }
                println!("\nCase values rules can read besides the schemas:");
                for (name, ty, doc) in dsl::cel::types::CONTEXT {
                    println!("  {name}: {ty}\n      {doc}");
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
