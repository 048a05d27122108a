//! Scenarios: a case scripted as data — a submission, the commands officers and the applicant
//! give at given instants, and what must hold at the end (status, deadlines, open tasks, the
//! events in order). A reform office tests its flow with them the way a programmer tests a
//! function; the stdlib's processes are proven by them.
//!
//! A scenario runs through the public [`Engine`] API on whatever [`Store`] the caller gives,
//! with a [`ManualClock`] set to each step's instant, so deadlines are those of the real
//! calendar. [`run`] returns every difference between what was expected and what happened,
//! worded for the person who wrote the scenario.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, FixedOffset, Utc};
use dsl::CompiledFlow;
use serde::{Deserialize, Serialize};

use crate::case::{Actor, Command, Status};
use crate::{Engine, EngineError, ManualClock, Store, Submission, Submitted};

/// A scripted case.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub description: String,
    /// The process (or item) the case applies for.
    pub process: String,
    pub submit: Submit,
    /// The submission must be refused, exactly these top-level clauses failing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused: Option<Vec<String>>,
    #[serde(default)]
    pub steps: Vec<Step>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect: Option<Expect>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Submit {
    pub at: DateTime<FixedOffset>,
    #[serde(default)]
    pub data: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    pub materials: Vec<String>,
    #[serde(default)]
    pub licences: Vec<String>,
}

/// One step: a command, or the timers firing (`tick`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    pub at: DateTime<FixedOffset>,
    #[serde(default)]
    pub tick: bool,
    /// A department (one of its officers, `samr`), an officer (`samr/li.wei`), `applicant` or
    /// `supervisor`.
    #[serde(default)]
    pub by: Option<String>,
    #[serde(default)]
    pub command: Option<Command>,
    /// The command must be refused with this code (`not_your_task`, `closed`, …).
    #[serde(default)]
    pub error: Option<String>,
}

/// What must hold once every step ran.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    pub status: Status,
    /// Every clock of the case: scope (`process` or an item) → last working day.
    #[serde(default)]
    pub deadlines: BTreeMap<String, String>,
    /// The open tasks, as `item/step@department`.
    #[serde(default)]
    pub tasks: Vec<String>,
    /// The type of every event, in order.
    #[serde(default)]
    pub events: Vec<String>,
}

/// What happened, for the report of a failed scenario.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Outcome {
    /// Empty when everything held.
    pub differences: Vec<String>,
    pub status: Option<Status>,
    pub deadlines: BTreeMap<String, String>,
    pub tasks: Vec<String>,
    pub events: Vec<String>,
}

impl Outcome {
    pub fn passed(&self) -> bool {
        self.differences.is_empty()
    }
}

/// The stable code of an engine error: a refused command's own code (`not_your_task`, …),
/// otherwise the kind of failure.
pub fn error_code(error: &EngineError) -> String {
    match error {
        EngineError::Command(command) => serde_json::to_value(command)
            .ok()
            .and_then(|v| v.get("code").and_then(|c| c.as_str()).map(str::to_string))
            .unwrap_or_else(|| "command_not_allowed".into()),
        EngineError::UnknownFlow(_) => "unknown_flow".into(),
        EngineError::UnknownCase(_) => "unknown_case".into(),
        EngineError::Facts(_) => "invalid_data".into(),
        EngineError::Rules(_) => "invalid_rules".into(),
        EngineError::VersionMismatch { .. } => "version_conflict".into(),
        EngineError::KeyReused => "idempotency_key_reused".into(),
        EngineError::Store(_) => "store".into(),
    }
}

/// Runs a scenario on `engine`, whose clock must be `clock`. The flow is deployed first
/// (a no-op when it is already there). Errors of the store are differences too: a scenario
/// run never panics and always says what went wrong.
pub async fn run<S: Store>(
    engine: &Engine<S>,
    clock: &ManualClock,
    flow: &CompiledFlow,
    scenario: &Scenario,
) -> Outcome {
    let mut outcome = Outcome::default();
    let differences = &mut outcome.differences;
    if let Err(e) = engine.deploy(flow).await {
        differences.push(format!("cannot deploy `{}`: {e}", flow.name));
        return outcome;
    }
    clock.set(scenario.submit.at.with_timezone(&Utc));
    let submission = Submission {
        flow: scenario.process.clone(),
        data: scenario.submit.data.clone(),
        materials: scenario.submit.materials.clone(),
        licences: scenario.submit.licences.clone(),
    };
    let case = match engine.submit(&submission, None).await {
        Err(e) => {
            differences.push(format!("the submission failed ({}): {e}", error_code(&e)));
            return outcome;
        }
        Ok(Submitted::Refused { reasons }) => {
            // A clause written over two lines is compared with its spaces collapsed.
            let words = |text: &str| text.split_whitespace().collect::<Vec<_>>().join(" ");
            let failing: Vec<String> =
                reasons.iter().flat_map(|r| r.failing.iter().map(|c| words(&c.source))).collect();
            match &scenario.refused {
                Some(expected) if expected.iter().map(|e| words(e)).eq(failing.iter().cloned()) => {}
                Some(expected) => differences.push(format!(
                    "refused for other clauses: expected {}, got {}",
                    list(expected),
                    list(&failing)
                )),
                None => differences.push(format!("the submission was refused: {}", list(&failing))),
            }
            return outcome;
        }
        Ok(Submitted::Accepted { case }) => {
            if let Some(expected) = &scenario.refused {
                differences.push(format!("the submission was accepted, but expected refused for {}", list(expected)));
            }
            case
        }
    };
    for (number, step) in scenario.steps.iter().enumerate() {
        let number = number + 1;
        clock.set(step.at.with_timezone(&Utc));
        if step.tick {
            if let Err(e) = engine.tick().await {
                differences.push(format!("step {number}: the timers failed to fire: {e}"));
            }
            continue;
        }
        let (Some(by), Some(command)) = (&step.by, &step.command) else {
            differences.push(format!("step {number}: needs `by` and `command`, or `tick`"));
            continue;
        };
        let result = engine.act(&case.id, command, &Actor::parse(by), None, None).await;
        match (result, &step.error) {
            (Ok(_), None) => {}
            (Ok(_), Some(code)) => differences
                .push(format!("step {number}: expected the command to be refused with `{code}`, it was carried out")),
            (Err(e), None) => differences.push(format!("step {number}: refused ({}): {e}", error_code(&e))),
            (Err(e), Some(code)) if error_code(&e) == *code => {}
            (Err(e), Some(code)) => {
                differences.push(format!("step {number}: expected `{code}`, refused with `{}`: {e}", error_code(&e)))
            }
        }
    }
    let (state, history) = match (engine.case(&case.id).await, engine.history(&case.id).await) {
        (Ok(state), Ok(history)) => (state, history),
        (Err(e), _) | (_, Err(e)) => {
            differences.push(format!("cannot read the case back: {e}"));
            return outcome;
        }
    };
    outcome.status = Some(state.status);
    outcome.deadlines = state.deadlines.iter().map(|(scope, d)| (scope.clone(), d.due.clone())).collect();
    outcome.tasks = state.tasks.values().map(|t| format!("{}/{}@{}", t.item, t.step, t.department)).collect();
    outcome.events = history
        .iter()
        .map(|e| {
            serde_json::to_value(e)
                .ok()
                .and_then(|v| v.get("type").and_then(|t| t.as_str()).map(str::to_string))
                .unwrap_or_default()
        })
        .collect();
    let Some(expect) = &scenario.expect else {
        if scenario.refused.is_none() {
            outcome.differences.push("no `expect`: say what must hold at the end".into());
        }
        return outcome;
    };
    let differences = &mut outcome.differences;
    if expect.status != state.status {
        differences.push(format!("status: expected {:?}, got {:?}", expect.status, state.status));
    }
    if expect.deadlines != outcome.deadlines {
        for scope in expect.deadlines.keys().chain(outcome.deadlines.keys()).collect::<std::collections::BTreeSet<_>>()
        {
            let (wanted, got) = (expect.deadlines.get(scope), outcome.deadlines.get(scope));
            if wanted != got {
                differences.push(format!(
                    "deadline `{scope}`: expected {}, got {}",
                    wanted.map_or("none", |d| d.as_str()),
                    got.map_or("none", |d| d.as_str())
                ));
            }
        }
    }
    let mut tasks = outcome.tasks.clone();
    let mut wanted_tasks = expect.tasks.clone();
    tasks.sort();
    wanted_tasks.sort();
    if tasks != wanted_tasks {
        differences.push(format!("open tasks: expected {}, got {}", list(&wanted_tasks), list(&tasks)));
    }
    if expect.events != outcome.events {
        let at = expect.events.iter().zip(&outcome.events).take_while(|(a, b)| a == b).count();
        differences.push(format!(
            "events differ from #{} on: expected {}, got {}",
            at + 1,
            list(&expect.events[at.min(expect.events.len())..]),
            list(&outcome.events[at.min(outcome.events.len())..])
        ));
    }
    outcome
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        return "none".into();
    }
    items.iter().map(|i| format!("`{i}`")).collect::<Vec<_>>().join(", ")
}

/// A manual clock for a scenario engine.
pub fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(DateTime::<Utc>::UNIX_EPOCH))
}
