//! `onetrip calendar`: the working-day arithmetic an officer asks for.

use std::process::ExitCode;

use calendar::{parse_date, Calendar};
use clap::Subcommand;

#[derive(Subcommand)]
pub enum CalendarCommand {
    /// The due date of a limit of DAYS working days starting on DATE (not counted).
    Due {
        date: String,
        days: u32,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Working days after FROM up to and including TO.
    Between {
        from: String,
        to: String,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
}

pub fn run(command: CalendarCommand) -> Result<ExitCode, String> {
    let calendar = Calendar::official();
    match command {
        CalendarCommand::Due { date, days, format } => {
            let start = parse_date(&date).map_err(|e| e.to_string())?;
            let due = calendar.due_date(start, days).map_err(|e| e.to_string())?;
            match format {
                Format::Text => println!("{due}"),
                Format::Json => println!(
                    "{}",
                    serde_json::json!({"start": start.to_string(), "workdays": days, "due": due.to_string()})
                ),
            }
        }
        CalendarCommand::Between { from, to, format } => {
            let (a, b) = (parse_date(&from).map_err(|e| e.to_string())?, parse_date(&to).map_err(|e| e.to_string())?);
            let days = calendar.workdays_between(a, b).map_err(|e| e.to_string())?;
            match format {
                Format::Text => println!("{days}"),
                Format::Json => {
                    println!("{}", serde_json::json!({"from": a.to_string(), "to": b.to_string(), "workdays": days}))
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
