//! `onetrip stalls`: the supervisor's stall analysis of a database, as tables or JSON.

use std::process::ExitCode;

use engine::stalls::{StallFilter, Stalls};

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

/// The figures as Markdown tables (working days throughout).
fn table(stalls: &Stalls) -> String {
    let mut out = format!("stall analysis on {} (working days)\n\n", stalls.today);
    out.push_str("## where cases wait\n\n| process | item | step | department | waiting | p50 | p90 | max | overdue |\n|---|---|---|---|---|---|---|---|---|\n");
    for s in &stalls.states {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            s.process, s.item, s.step, s.department, s.waiting, s.days.p50, s.days.p90, s.days.max, s.overdue
        ));
    }
    out.push_str("\n## longest waits\n\n| case | process | item | step | department | since | days | past task limit | past SLA | 补正 |\n|---|---|---|---|---|---|---|---|---|---|\n");
    for l in &stalls.longest {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            l.case_id,
            l.process,
            l.item,
            l.step,
            l.department,
            l.since,
            l.days,
            l.days_past_task_limit,
            l.days_past_sla,
            if l.awaiting_supplement { "yes" } else { "" }
        ));
    }
    out.push_str("\n## departments\n\n| department | handled | p50 | p90 | max | within limit | open | open overdue |\n|---|---|---|---|---|---|---|---|\n");
    for d in &stalls.departments {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {:.0}% | {} | {} |\n",
            d.department,
            d.handled,
            d.days.p50,
            d.days.p90,
            d.days.max,
            d.within_limit * 100.0,
            d.open,
            d.open_overdue
        ));
    }
    let count = |map: &std::collections::BTreeMap<String, u64>, level: &str| map.get(level).copied().unwrap_or(0);
    out.push_str(&format!(
        "\n## warnings\n\nopen: {} red, {} yellow; past: {} red, {} yellow\n\n| at | level | case | process | rule | department | open |\n|---|---|---|---|---|---|---|\n",
        count(&stalls.warnings.open, "red"),
        count(&stalls.warnings.open, "yellow"),
        count(&stalls.warnings.past, "red"),
        count(&stalls.warnings.past, "yellow"),
    ));
    for w in &stalls.warnings.latest {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} |\n",
            w.at,
            w.level,
            w.case_id,
            w.process,
            w.rule,
            w.department,
            if w.open { "yes" } else { "" }
        ));
    }
    out.push_str("\n## processes\n\n| process | cases by status | trips per case | ≤1 trip | 好差评 (score: count) | within SLA |\n|---|---|---|---|---|---|\n");
    let pairs = |map: &std::collections::BTreeMap<String, u64>| {
        map.iter().map(|(k, n)| format!("{k}: {n}")).collect::<Vec<_>>().join(", ")
    };
    for p in &stalls.processes {
        out.push_str(&format!(
            "| {} | {} | {:.2} | {:.0}% | {} | {:.0}% |\n",
            p.process,
            pairs(&p.cases),
            p.trips_per_case,
            p.at_most_one_trip * 100.0,
            pairs(&p.ratings),
            p.within_sla * 100.0
        ));
    }
    out
}
