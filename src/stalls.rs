//! `onetrip stalls`: the supervisor's stall analysis of a database, as tables or JSON.

use std::process::ExitCode;

use diagram::flow::{Heat, Options, StateHeat};
use engine::stalls::{StallFilter, Stalls};
use engine::store::Store;

use crate::cases::open;

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum StallFormat {
    Table,
    Json,
}

pub async fn run(filter: StallFilter, format: StallFormat, db: &str) -> Result<ExitCode, String> {
    let engine = open(db).await?;
    let stalls = engine.stalls(&filter).await.map_err(|e| e.to_string())?;
    match format {
        StallFormat::Json => println!("{}", serde_json::to_string_pretty(&stalls).map_err(|e| e.to_string())?),
        StallFormat::Table => print!("{}", table(&stalls)),
    }
    Ok(ExitCode::SUCCESS)
}

/// The latest deployed version of process `name` as an SVG heat map of its waiting cases.
pub async fn heat_map(name: &str, db: &str) -> Result<String, String> {
    let engine = open(db).await?;
    let flow = engine
        .store()
        .latest_flow(name)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("no process `{name}` is deployed in `{db}`"))?;
    let filter = StallFilter { process: Some(name.to_string()), ..StallFilter::default() };
    let states = engine.stalled_states(&filter).await.map_err(|e| e.to_string())?;
    let mut heat = Heat::new();
    for s in states {
        // Cases of older versions wait in states of the same names: counted together, with
        // the larger of the percentiles (the exact ones would need the histograms).
        let h: &mut StateHeat = heat.entry((s.item, s.step)).or_default();
        h.waiting += s.waiting;
        h.overdue += s.overdue;
        h.p50 = h.p50.max(s.days.p50);
        h.p90 = h.p90.max(s.days.p90);
        h.max = h.max.max(s.days.max);
    }
    Ok(diagram::flow::svg(&flow, &Options { heat: Some(heat), link: None }))
}

/// The figures as Markdown tables (working days throughout).
fn table(stalls: &Stalls) -> String {
    let mut out = format!("stall analysis on {} (working days)\n", stalls.today);
    let yes = |flag: bool| if flag { "yes" } else { "" }.to_string();
    let share = |x: f64| format!("{:.0}%", x * 100.0);
    let count = |map: &std::collections::BTreeMap<String, u64>, level: &str| map.get(level).copied().unwrap_or(0);
    let pairs = |map: &std::collections::BTreeMap<String, u64>| {
        map.iter().map(|(k, n)| format!("{k}: {n}")).collect::<Vec<_>>().join(", ")
    };

    section(
        &mut out,
        "where cases wait",
        "",
        &["process", "item", "step", "department", "waiting", "p50", "p90", "max", "overdue"],
    );
    for s in &stalls.states {
        row(
            &mut out,
            [
                s.process.to_string(),
                s.item.to_string(),
                s.step.to_string(),
                s.department.to_string(),
                s.waiting.to_string(),
                s.days.p50.to_string(),
                s.days.p90.to_string(),
                s.days.max.to_string(),
                s.overdue.to_string(),
            ],
        );
    }
    section(
        &mut out,
        "longest waits",
        "",
        &["case", "process", "item", "step", "department", "since", "days", "past task limit", "past SLA", "补正"],
    );
    for l in &stalls.longest {
        row(
            &mut out,
            [
                l.case_id.to_string(),
                l.process.to_string(),
                l.item.to_string(),
                l.step.to_string(),
                l.department.to_string(),
                l.since.to_string(),
                l.days.to_string(),
                l.days_past_task_limit.to_string(),
                l.days_past_sla.to_string(),
                yes(l.awaiting_supplement),
            ],
        );
    }
    section(
        &mut out,
        "departments",
        "",
        &["department", "handled", "p50", "p90", "max", "within limit", "open", "open overdue"],
    );
    for d in &stalls.departments {
        row(
            &mut out,
            [
                d.department.to_string(),
                d.handled.to_string(),
                d.days.p50.to_string(),
                d.days.p90.to_string(),
                d.days.max.to_string(),
                share(d.within_limit),
                d.open.to_string(),
                d.open_overdue.to_string(),
            ],
        );
    }
    let (open, past) = (&stalls.warnings.open, &stalls.warnings.past);
    let summary = format!(
        "open: {} red, {} yellow; past: {} red, {} yellow\n\n",
        count(open, "red"),
        count(open, "yellow"),
        count(past, "red"),
        count(past, "yellow"),
    );
    section(&mut out, "warnings", &summary, &["at", "level", "case", "process", "rule", "department", "open"]);
    for w in &stalls.warnings.latest {
        row(
            &mut out,
            [
                w.at.to_string(),
                w.level.to_string(),
                w.case_id.to_string(),
                w.process.to_string(),
                w.rule.to_string(),
                w.department.to_string(),
                yes(w.open),
            ],
        );
    }
    section(
        &mut out,
        "processes",
        "",
        &["process", "cases by status", "trips per case", "≤1 trip", "好差评 (score: count)", "within SLA"],
    );
    for p in &stalls.processes {
        row(
            &mut out,
            [
                p.process.to_string(),
                pairs(&p.cases),
                format!("{:.2}", p.trips_per_case),
                share(p.at_most_one_trip),
                pairs(&p.ratings),
                share(p.within_sla),
            ],
        );
    }
    out
}

/// A section's heading, an optional paragraph, and its table's header.
fn section(out: &mut String, title: &str, paragraph: &str, columns: &[&str]) {
    out.push_str(&format!("\n## {title}\n\n{paragraph}"));
    row(out, columns.iter().map(ToString::to_string));
    out.push_str(&"|---".repeat(columns.len()));
    out.push_str("|\n");
}

fn row(out: &mut String, cells: impl IntoIterator<Item = String>) {
    out.push('|');
    for cell in cells {
        out.push_str(&format!(" {cell} |"));
    }
    out.push('\n');
}
