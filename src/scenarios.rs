//! `onetrip test` and `onetrip stdlib`: scenarios run on a temporary SQLite file, and the
//! national processes of the stdlib listed, shown, reported and tested.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use calendar::Calendar;
use clap::Subcommand;
use dsl::CompiledFlow;
use engine::scenario::{self, Scenario};
use engine::{AnyStore, Engine};

use crate::flows::{load, print_diagnostics, report_table};

#[derive(Subcommand)]
pub enum StdlibCommand {
    /// The processes of the library, with their titles.
    List,
    /// The source of a process's main file (`--all`: every file it imports too).
    Show {
        process: String,
        #[arg(long)]
        all: bool,
    },
    /// One table of every process's reform figures, or one process's full report.
    Report {
        process: Option<String>,
        #[arg(long, value_enum, default_value_t = crate::ReportFormat::Table)]
        format: crate::ReportFormat,
    },
    /// Check every process of the library (or those named).
    Check { processes: Vec<String> },
    /// Run the scenarios of every process (or those named).
    Test { processes: Vec<String> },
    /// 办事指南 of every process (or those named) and their items, as one site.
    Guide {
        processes: Vec<String>,
        /// The site's folder.
        #[arg(long)]
        out: PathBuf,
    },
}

/// A scenario to run: where it comes from, its text, and the flow it needs.
struct Scripted {
    path: String,
    text: String,
    flow: Result<Arc<CompiledFlow>, String>,
}

/// Runs scenarios one after the other on `db` (default: one temporary SQLite file); prints a
/// line per scenario and every difference of those that fail.
async fn run_all(scripted: Vec<Scripted>, db: Option<&str>) -> Result<ExitCode, String> {
    let file = std::env::temp_dir().join(format!("onetrip-scenarios-{}.db", std::process::id()));
    let url = db.map_or_else(|| format!("sqlite://{}", file.display()), str::to_string);
    let store = AnyStore::open(&url).await.map_err(|e| format!("cannot open `{url}`: {e}"))?;
    let clock = scenario::clock();
    let engine = Engine::new(store, Arc::new(Calendar::official()), clock.clone());
    let (mut passed, mut failed) = (0, 0);
    for item in &scripted {
        let outcome = match (serde_json::from_str::<Scenario>(&item.text), &item.flow) {
            (Err(e), _) => Err(format!("not a scenario: {e}")),
            (_, Err(e)) => Err(e.clone()),
            (Ok(s), Ok(flow)) => Ok((scenario::run(&engine, &clock, flow, &s).await, s.description)),
        };
        match outcome {
            Ok((outcome, _)) if outcome.passed() => {
                passed += 1;
                println!("ok      {}", item.path);
            }
            Ok((outcome, description)) => {
                failed += 1;
                println!("FAILED  {} — {description}", item.path);
                for difference in &outcome.differences {
                    println!("        - {difference}");
                }
                if let Some(status) = outcome.status {
                    println!("        what happened: status {status:?}");
                    println!("          deadlines {}", serde_json::to_string(&outcome.deadlines).unwrap_or_default());
                    println!("          tasks {}", serde_json::to_string(&outcome.tasks).unwrap_or_default());
                    println!("          events {}", serde_json::to_string(&outcome.events).unwrap_or_default());
                }
            }
            Err(e) => {
                failed += 1;
                println!("FAILED  {}\n        - {e}", item.path);
            }
        }
    }
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", file.display()));
    }
    println!("\n{passed} passed, {failed} failed");
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// `onetrip test --flows FILES SCENARIOS`: scenario files (or folders of them) against the
/// processes of the flow files given.
pub fn test(flows: &[PathBuf], scenarios: &[PathBuf], db: Option<&str>) -> Result<ExitCode, String> {
    let programs = load(flows)?;
    if programs.iter().any(|c| c.analysis.has_errors()) {
        print_diagnostics(&programs);
        return Ok(ExitCode::FAILURE);
    }
    let mut compiled: HashMap<String, Result<Arc<CompiledFlow>, String>> = HashMap::new();
    let mut scripted = Vec::new();
    for path in crate::flows::expand_to(scenarios, "json")? {
        let text = std::fs::read_to_string(&path).map_err(|e| format!("cannot read `{path}`: {e}"))?;
        let process = serde_json::from_str::<Scenario>(&text).map(|s| s.process).unwrap_or_default();
        let flow = compiled
            .entry(process.clone())
            .or_insert_with(|| {
                programs
                    .iter()
                    .find_map(|c| dsl::compile(&c.analysis.program, &process))
                    .map(Arc::new)
                    .ok_or_else(|| format!("no process `{process}` in the flow files given"))
            })
            .clone();
        scripted.push(Scripted { path, text, flow });
    }
    crate::cases::block_on(run_all(scripted, db))
}

fn chosen(processes: &[String]) -> Result<Vec<String>, String> {
    let all = stdlib_flows::processes();
    if processes.is_empty() {
        return Ok(all.iter().map(|p| p.to_string()).collect());
    }
    for p in processes {
        if !all.contains(&p.as_str()) {
            return Err(format!("no process `{p}` in the stdlib; `onetrip stdlib list` lists them"));
        }
    }
    Ok(processes.to_vec())
}

fn checked(process: &str) -> Result<stdlib_flows::Checked, String> {
    stdlib_flows::load(process).ok_or_else(|| format!("no process `{process}` in the stdlib"))
}

pub fn stdlib(command: StdlibCommand) -> Result<ExitCode, String> {
    match command {
        StdlibCommand::List => {
            for name in stdlib_flows::processes() {
                let checked = checked(name)?;
                let title = checked.analysis.program.process(name).map(|p| p.title.clone()).unwrap_or_default();
                println!("{name:28} {title}");
            }
            Ok(ExitCode::SUCCESS)
        }
        StdlibCommand::Show { process, all } => {
            let checked = checked(&process)?;
            let main = stdlib_flows::main_file(&process);
            for file in &checked.workspace.files {
                if all || file.path == main {
                    if all {
                        println!("// ── {} ──", file.path);
                    }
                    print!("{}", file.text);
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        StdlibCommand::Report { process: Some(process), format } => {
            let checked = checked(&process)?;
            let program = &checked.analysis.program;
            let Some(p) = program.process(&process) else { return Err(format!("no process `{process}`")) };
            let report = dsl::analysis::report(program, p);
            match format {
                crate::ReportFormat::Json => {
                    println!("{}", serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?)
                }
                crate::ReportFormat::Table => print!("{}", report_table(&report)),
            }
            Ok(ExitCode::SUCCESS)
        }
        StdlibCommand::Report { process: None, format } => {
            let mut reports = Vec::new();
            for name in stdlib_flows::processes() {
                let checked = checked(name)?;
                let program = &checked.analysis.program;
                if let Some(p) = program.process(name) {
                    reports.push(dsl::analysis::report(program, p));
                }
            }
            match format {
                crate::ReportFormat::Json => {
                    println!("{}", serde_json::to_string_pretty(&reports).map_err(|e| e.to_string())?)
                }
                crate::ReportFormat::Table => print!("{}", crate::flows::summary_table(&reports)),
            }
            Ok(ExitCode::SUCCESS)
        }
        StdlibCommand::Check { processes } => {
            let mut programs = Vec::new();
            for name in chosen(&processes)? {
                programs.push(checked(&name)?);
            }
            print_diagnostics(&programs);
            let errors = programs.iter().any(|c| c.analysis.has_errors());
            Ok(if errors { ExitCode::FAILURE } else { ExitCode::SUCCESS })
        }
        StdlibCommand::Guide { processes, out } => {
            let mut site = guide::html::Site::default();
            for name in chosen(&processes)? {
                site.add(&checked(&name)?.analysis.program, &name);
            }
            crate::flows::write_site(&out, site.finish("“高效办成一件事”办事指南"))?;
            Ok(ExitCode::SUCCESS)
        }
        StdlibCommand::Test { processes } => {
            let mut scripted = Vec::new();
            for name in chosen(&processes)? {
                let flow = stdlib_flows::compiled(&name).map(Arc::new).map_err(|e| e.to_string());
                for (path, text) in stdlib_flows::scenarios(&name) {
                    scripted.push(Scripted {
                        path: Path::new("scenarios").join(path).display().to_string(),
                        text: text.to_string(),
                        flow: flow.clone(),
                    });
                }
            }
            crate::cases::block_on(run_all(scripted, None))
        }
    }
}
