//! One case's life on a working-day axis, for the supervisor: each opening of a task as a span
//! from its opening to its end, the periods its clocks stood still (补正, special procedures),
//! the warnings raised, and the process's promised limit.
//!
//! Positions are in working days from the day the case was submitted (day 0): a working day
//! `n` covers `[n, n + 1)`, an instant within it sits at `n` plus the Beijing time of day, and an
//! instant on a rest day at the end of the working day before it, since no working time passes
//! on rest days. So a bar's length reads as working days used.
//!
//! Built from the case's events alone (and the calendar); names steps and departments, never
//! applicant data, and carries no free text (reasons, approvals).

use std::collections::BTreeMap;

use chrono::{NaiveDate, Timelike};
use serde::{Deserialize, Serialize};

use calendar::Calendar;
use dsl::model::Pii;

use crate::case::{date_of, step_scope, CaseState, Event, EventKind, Level, Status};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CaseTimeline {
    pub case_id: String,
    pub process: String,
    pub status: Status,
    /// The working days of the axis (`YYYY-MM-DD`): the submission day, then every working day
    /// up to the case's end, or today while it runs.
    pub days: Vec<String>,
    pub steps: Vec<StepSpan>,
    pub pauses: Vec<Pause>,
    pub warnings: Vec<WarningMark>,
    /// The last working day of the process's promised limit, and its position (the end of
    /// that day), if the process has one.
    pub due: Option<Due>,
    /// Where "now" is on the axis (or the case's end).
    pub now: f64,
}

/// One opening of a task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StepSpan {
    pub item: String,
    pub step: String,
    pub department: String,
    pub opened_at: String,
    pub ended_at: Option<String>,
    pub from: f64,
    pub to: f64,
    /// `open`, `completed`, `returned` (退回), `tolerated` (容缺), `rejected`, or `ended` (the
    /// case ended around it: withdrawn, terminated).
    pub outcome: String,
    /// The last working day of its limit (the step's own, else its item's) when it opened, as
    /// later moved by a pause or an extension while it was open.
    pub due: Option<String>,
    /// It ended (or is still open) after its limit.
    pub late: bool,
    /// It waited for the applicant's supplementary materials (补正) at some point.
    pub supplement: bool,
}

/// A period the clocks stood still.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Pause {
    /// `supplement` (补正) or the special procedure's kind.
    pub kind: String,
    pub from_at: String,
    pub to_at: Option<String>,
    pub from: f64,
    pub to: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WarningMark {
    /// The clock: `process`, an item, or `item/step`.
    pub scope: String,
    pub level: Level,
    pub at: String,
    pub position: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Due {
    pub day: String,
    pub position: f64,
}

/// The axis: the submission day and the working days after it.
struct Axis<'c> {
    calendar: &'c Calendar,
    start: NaiveDate,
}

impl Axis<'_> {
    /// Working days after the start up to `day` (0 for the start day or before it).
    fn index(&self, day: NaiveDate) -> f64 {
        self.calendar.workdays_between(self.start, day).unwrap_or(0).max(0) as f64
    }

    /// The position of an instant (RFC 3339).
    fn position(&self, at: &str) -> f64 {
        let Ok(instant) = chrono::DateTime::parse_from_rfc3339(at) else { return 0.0 };
        let beijing = instant.with_timezone(&chrono::Utc) + chrono::Duration::hours(8);
        let day = beijing.date_naive();
        if day < self.start {
            return 0.0;
        }
        let working = day == self.start || self.calendar.is_working_day(day).unwrap_or(true);
        if !working {
            // No working time passes on a rest day: the end of the working day before it.
            return self.index(day) + 1.0;
        }
        let time = beijing.time();
        self.index(day) + f64::from(time.num_seconds_from_midnight()) / 86_400.0
    }

    /// The end of a working day (`YYYY-MM-DD`).
    fn end_of(&self, day: &str) -> f64 {
        calendar::parse_date(day).map_or(0.0, |d| self.index(d) + 1.0)
    }

    /// The days from the start to `last`: the start day, then the working days.
    fn days(&self, last: NaiveDate) -> Vec<String> {
        let mut days = vec![self.start.to_string()];
        let mut day = self.start;
        // Bounded: a case older than its calendar's years gives a short axis, never a loop.
        while day < last && days.len() < 10_000 {
            let Some(next) = day.succ_opt() else { break };
            day = next;
            match self.calendar.is_working_day(day) {
                Ok(true) => days.push(day.to_string()),
                Ok(false) => {}
                Err(_) => break,
            }
        }
        days
    }
}

/// The timeline of a case from its events, as of `now` (RFC 3339).
pub fn timeline(state: &CaseState, events: &[Event], calendar: &Calendar, now: &str) -> CaseTimeline {
    let start = calendar::parse_date(&date_of(&state.submitted_at)).unwrap_or_default();
    let axis = Axis { calendar, start };
    let ended = matches!(state.status, Status::Completed | Status::Rejected | Status::Withdrawn | Status::Terminated);
    let end_at = if ended { state.updated_at.clone() } else { now.to_string() };
    let now_position = axis.position(&end_at);

    let mut steps: Vec<StepSpan> = Vec::new();
    // Index into `steps` of each node's open span.
    let mut open: BTreeMap<u32, usize> = BTreeMap::new();
    let mut pauses: Vec<Pause> = Vec::new();
    let mut warnings = Vec::new();
    let mut running = CaseState { tasks: Default::default(), deadlines: Default::default(), ..state.clone() };
    for event in events {
        let at = axis.position(&event.at);
        let close = |node: &u32, outcome: &str, steps: &mut Vec<StepSpan>, open: &mut BTreeMap<u32, usize>| {
            if let Some(index) = open.remove(node) {
                let span = &mut steps[index];
                span.ended_at = Some(event.at.clone());
                span.to = at.max(span.from);
                span.outcome = outcome.to_string();
                span.late = span.due.as_deref().is_some_and(|due| date_of(&event.at).as_str() > due);
            }
        };
        match &event.kind {
            EventKind::TaskOpened { node, item, step, department, .. } => {
                let due = [step_scope(item, step), item.clone()]
                    .iter()
                    .find_map(|scope| running.deadlines.get(scope))
                    .filter(|d| d.finished.is_none())
                    .map(|d| d.due.clone());
                open.insert(*node, steps.len());
                steps.push(StepSpan {
                    item: item.clone(),
                    step: step.clone(),
                    department: department.clone(),
                    opened_at: event.at.clone(),
                    ended_at: None,
                    from: at,
                    to: at,
                    outcome: "open".into(),
                    due,
                    late: false,
                    supplement: false,
                });
            }
            EventKind::TaskCompleted { node, .. } => close(node, "completed", &mut steps, &mut open),
            EventKind::Returned { node, .. } => close(node, "returned", &mut steps, &mut open),
            EventKind::Tolerated { node, .. } => close(node, "tolerated", &mut steps, &mut open),
            EventKind::Rejected { node, .. } => close(node, "rejected", &mut steps, &mut open),
            EventKind::SupplementRequested { node, .. } => {
                if let Some(index) = open.get(node) {
                    steps[*index].supplement = true;
                }
            }
            EventKind::ClockPaused { reason, .. } => {
                // The reasons `case` writes: `补正`, or `特别程序: <kind>`.
                let kind = match reason.strip_prefix("特别程序: ") {
                    Some(kind) => kind.to_string(),
                    None if reason == "补正" => "supplement".to_string(),
                    None => reason.clone(),
                };
                pauses.push(Pause { kind, from_at: event.at.clone(), to_at: None, from: at, to: at });
            }
            EventKind::ClockResumed { .. } => {
                if let Some(pause) = pauses.iter_mut().rev().find(|p| p.to_at.is_none()) {
                    pause.to_at = Some(event.at.clone());
                    pause.to = at.max(pause.from);
                }
            }
            EventKind::WarningRaised { scope, level } => {
                warnings.push(WarningMark { scope: scope.clone(), level: *level, at: event.at.clone(), position: at })
            }
            EventKind::Withdrawn | EventKind::Completed | EventKind::Terminated { .. } => {
                for node in open.keys().copied().collect::<Vec<_>>() {
                    close(&node, "ended", &mut steps, &mut open);
                }
            }
            _ => {}
        }
        running.apply(event);
        if matches!(event.kind, EventKind::ClockResumed { .. } | EventKind::Extended { .. }) {
            // The limits moved: an open step is measured against its limit as it is now.
            for index in open.values() {
                let span = &mut steps[*index];
                if let Some(deadline) = [step_scope(&span.item, &span.step), span.item.clone()]
                    .iter()
                    .find_map(|scope| running.deadlines.get(scope))
                    .filter(|d| d.finished.is_none())
                {
                    span.due = Some(deadline.due.clone());
                }
            }
        }
    }
    let today = date_of(&end_at);
    for index in open.values() {
        let span = &mut steps[*index];
        span.to = now_position.max(span.from);
        span.late = span.due.as_deref().is_some_and(|due| today.as_str() > due);
    }
    for pause in pauses.iter_mut().filter(|p| p.to_at.is_none()) {
        pause.to = now_position.max(pause.from);
    }
    let due = state.deadlines.get("process").map(|d| Due { day: d.due.clone(), position: axis.end_of(&d.due) });
    // The axis reaches the later of now and the promised limit, so both show.
    let last = [Some(today.as_str()), due.as_ref().map(|d| d.day.as_str())]
        .into_iter()
        .flatten()
        .filter_map(|d| calendar::parse_date(d).ok())
        .max()
        .unwrap_or(start);
    CaseTimeline {
        case_id: state.id.clone(),
        process: state.flow.clone(),
        status: state.status,
        days: axis.days(last),
        steps,
        pauses,
        warnings,
        due,
        now: now_position,
    }
}

/// The top-level personal fields of a case's facts (a stored [`crate::Submission`]), masked by
/// their kind: (`schema.field`, kind, masked value).
pub fn masked(flow: &dsl::compile::CompiledFlow, facts: &serde_json::Value) -> Vec<(String, Pii, String)> {
    let mut out = Vec::new();
    for schema in &flow.schemas {
        for field in &schema.fields {
            let (Some(pii), Some(value)) = (field.pii, facts["data"][&schema.name][&field.name].as_str()) else {
                continue;
            };
            out.push((format!("{}.{}", schema.name, field.name), pii, pii.mask(value)));
        }
    }
    out
}
