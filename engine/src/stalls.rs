//! Stall analysis (电子监察, 效能监督): where cases wait, which departments are late, the
//! warnings, and whether the reform's promise (one trip, within the promised days) is kept.
//!
//! Reads never scan the event log. Each write carries a [`Supervision`] record, computed here
//! from the state before and after the write's events, and the store keeps small tables from
//! it in the same transaction as the events: open tasks with the day they opened and their
//! due day, counters of waiting tasks per state and day, a histogram of handling times per
//! department, the warnings, and counters per process (status, trips, 好差评, SLA). A query
//! reads those and turns days into working days on the calendar, so its cost depends on the
//! number of states and distinct days, not of cases.
//!
//! Outputs name cases by id and departments, items and steps by name: never applicant data.

use std::collections::{BTreeMap, HashMap};

use calendar::Calendar;
use dsl::compile::CompiledFlow;
use serde::{Deserialize, Serialize};

use crate::case::{date_of, step_scope, CaseState, Event, EventKind, Level, Status};

/// What a write adds to the supervision tables, beside its events.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Supervision {
    /// The flow's name (the process).
    pub flow: String,
    /// Each open task's clock, by state node: the (Beijing) day it opened and the last
    /// working day of its limit (the step's own, else its item's), if it has one.
    pub tasks: BTreeMap<u32, TaskClock>,
    /// Trips this write adds: an item entered adds its on-site visits, a 补正 on an item not
    /// handled online adds one.
    pub trips: u32,
    /// 好差评, when this write rates the case.
    pub rating: Option<u8>,
    /// When this write completes the case: whether it was within the process's SLA (`None`
    /// without an SLA).
    pub sla_met: Option<bool>,
    /// Tasks finished by this write (completed, accepted with materials missing, refused).
    pub handled: Vec<Handled>,
    pub warnings: Vec<Warning>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TaskClock {
    pub day: String,
    pub due: Option<String>,
}

/// A task handled: by whom, in how many working days, and whether within its limit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Handled {
    pub department: String,
    pub item: String,
    pub step: String,
    pub days: i64,
    pub within: bool,
}

/// A warning raised (电子监察).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Warning {
    pub scope: String,
    pub level: Level,
    pub at: String,
    pub department: String,
}

/// The supervision record of a write: `before` is the state the events were decided on.
pub fn supervise(
    flow: &CompiledFlow,
    before: &CaseState,
    events: &[Event],
    after: &CaseState,
    calendar: &Calendar,
) -> Supervision {
    let mut record = Supervision { flow: flow.name.clone(), ..Supervision::default() };
    for (node, task) in &after.tasks {
        let due = [step_scope(&task.item, &task.step), task.item.clone()]
            .iter()
            .find_map(|scope| after.deadlines.get(scope))
            .filter(|d| d.finished.is_none())
            .map(|d| d.due.clone());
        record.tasks.insert(*node, TaskClock { day: date_of(&task.since), due });
    }
    let mut running = before.clone();
    let mut returned = false;
    for event in events {
        match &event.kind {
            EventKind::TaskCompleted { node, .. }
            | EventKind::Tolerated { node, .. }
            | EventKind::Rejected { node, .. } => {
                if let Some(task) = running.tasks.get(node) {
                    let (opened, done) = (date_of(&task.since), date_of(&event.at));
                    let days = workdays(calendar, &opened, &done).unwrap_or(0);
                    let within = [step_scope(&task.item, &task.step), task.item.clone()]
                        .iter()
                        .find_map(|scope| running.deadlines.get(scope))
                        .is_none_or(|d| done <= d.due);
                    record.handled.push(Handled {
                        department: task.department.clone(),
                        item: task.item.clone(),
                        step: task.step.clone(),
                        days,
                        within,
                    });
                }
            }
            EventKind::TaskOpened { item, step, .. } if !returned => {
                let declared = flow.items.iter().find(|i| &i.name == item);
                if declared.is_some_and(|i| i.steps.first().is_some_and(|s| &s.name == step)) {
                    record.trips += declared.map_or(0, |i| i.visits);
                }
            }
            EventKind::SupplementRequested { node, .. } => {
                let item = running.tasks.get(node).map(|t| t.item.clone());
                if !flow.items.iter().any(|i| Some(&i.name) == item.as_ref() && i.online) {
                    record.trips += 1;
                }
            }
            EventKind::Rated { score } => record.rating = Some(*score),
            EventKind::Completed => {
                record.sla_met = running.deadlines.get("process").map(|d| date_of(&event.at) <= d.due);
            }
            EventKind::WarningRaised { scope, level } => record.warnings.push(Warning {
                scope: scope.clone(),
                level: *level,
                at: event.at.clone(),
                department: department_of(flow, scope),
            }),
            _ => {}
        }
        returned = matches!(event.kind, EventKind::Returned { .. });
        running.apply(event);
    }
    record
}

/// The department a clock belongs to: an item's (or its step's), or the window's for the
/// process.
fn department_of(flow: &CompiledFlow, scope: &str) -> String {
    let item = scope.split('/').next().unwrap_or(scope);
    flow.items.iter().find(|i| i.name == item).map_or_else(|| flow.process.window.clone(), |i| i.department.clone())
}

/// Working days after `from` up to `to` (dates), on the calendar.
fn workdays(calendar: &Calendar, from: &str, to: &str) -> Option<i64> {
    let (from, to) = (calendar::parse_date(from).ok()?, calendar::parse_date(to).ok()?);
    calendar.workdays_between(from, to).ok()
}

/// Which part of the store a query looks at.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema, utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct StallFilter {
    /// Only this process (flow name).
    #[serde(default)]
    pub process: Option<String>,
    /// Only this department's states, tasks and warnings.
    #[serde(default)]
    pub department: Option<String>,
    /// Only this item's states and tasks (with `step`: one state).
    #[serde(default)]
    pub item: Option<String>,
    /// Only this step's states and tasks (with `item`: one state).
    #[serde(default)]
    pub step: Option<String>,
    /// How many of the longest-waiting cases and of the warnings to list (default 20, at most 500).
    #[serde(default)]
    pub limit: Option<u32>,
}

impl StallFilter {
    pub fn limit(&self) -> u32 {
        self.limit.unwrap_or(20).clamp(1, 500)
    }
}

/// Rows the store keeps, as it gives them to the analysis.
pub mod rows {
    /// Open tasks of a state that opened on one day and share a due day.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Waiting {
        pub flow: String,
        pub item: String,
        pub step: String,
        pub department: String,
        pub day: String,
        pub due: Option<String>,
        pub count: u64,
    }

    /// An open task.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct OpenTask {
        pub case_id: String,
        pub flow: String,
        pub item: String,
        pub step: String,
        pub department: String,
        pub since: String,
        pub due: Option<String>,
    }

    /// Tasks a department handled in `days` working days, within their limit or not.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Handled {
        pub department: String,
        pub days: i64,
        pub within: bool,
        pub count: u64,
    }

    /// A warning raised, and whether its case is still running.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Warning {
        pub case_id: String,
        pub flow: String,
        pub scope: String,
        pub level: String,
        pub at: String,
        pub department: String,
        pub open: bool,
    }

    /// A counter of a process: `metric` is `status`, `trips`, `rating` or `sla_met`.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct ProcessCount {
        pub flow: String,
        pub metric: String,
        pub key: String,
        pub count: u64,
    }
}

/// Working-day figures of a set of waiting or handling times: nearest-rank percentiles.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Spread {
    pub p50: i64,
    pub p90: i64,
    pub max: i64,
}

/// The nearest-rank percentiles of a histogram (value → count).
fn spread(histogram: &BTreeMap<i64, u64>) -> Spread {
    let total: u64 = histogram.values().sum();
    let rank = |p: u64| {
        // The smallest value with at least ⌈p·N/100⌉ values at or below it.
        let wanted = (p * total).div_ceil(100).max(1);
        let mut seen = 0;
        for (value, count) in histogram {
            seen += count;
            if seen >= wanted {
                return *value;
            }
        }
        0
    };
    Spread { p50: rank(50), p90: rank(90), max: histogram.keys().next_back().copied().unwrap_or(0) }
}

/// Everything a supervisor asks for, on the day `today` (Beijing).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Stalls {
    pub today: String,
    pub states: Vec<StateFigures>,
    pub longest: Vec<LongWait>,
    pub departments: Vec<DepartmentFigures>,
    pub warnings: Warnings,
    pub processes: Vec<ProcessFigures>,
}

/// A state (a step of an item) of a process and the cases waiting there now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StateFigures {
    pub process: String,
    pub item: String,
    pub step: String,
    pub department: String,
    pub waiting: u64,
    /// Working days waited so far.
    pub days: Spread,
    /// Of those waiting, how many are past their limit.
    pub overdue: u64,
}

/// One of the longest-waiting cases.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LongWait {
    pub case_id: String,
    pub process: String,
    pub item: String,
    pub step: String,
    pub department: String,
    /// When the task opened (RFC 3339).
    pub since: String,
    /// Working days waited so far.
    pub days: i64,
    /// Working days past the task's limit (its step's, else its item's); 0 when within.
    pub days_past_task_limit: i64,
    /// Working days past the process's SLA; 0 when within.
    pub days_past_sla: i64,
    /// The case waits for the applicant's supplementary materials (补正).
    pub awaiting_supplement: bool,
}

/// A department's work.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DepartmentFigures {
    pub department: String,
    pub handled: u64,
    /// Handling time in working days (from the task opening to its end).
    pub days: Spread,
    /// Share of the tasks handled within their promised limit (1 when none was handled).
    pub within_limit: f64,
    pub open: u64,
    pub open_overdue: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Warnings {
    /// Counts by level (`yellow`, `red`): raised on cases still running.
    pub open: BTreeMap<String, u64>,
    /// Counts by level: raised on cases that have ended.
    pub past: BTreeMap<String, u64>,
    /// The latest, newest first.
    pub latest: Vec<WarningEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WarningEntry {
    pub case_id: String,
    pub process: String,
    /// The clock: `process`, an item, or `item/step`.
    pub rule: String,
    pub level: String,
    pub at: String,
    pub department: String,
    pub open: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProcessFigures {
    pub process: String,
    /// Cases by status (`open`, `awaiting_supplement`, `completed`, …).
    pub cases: BTreeMap<String, u64>,
    /// Trips of completed cases: how many cases made each number of trips.
    pub trips: BTreeMap<String, u64>,
    pub trips_per_case: f64,
    /// Share of completed cases done in at most one trip.
    pub at_most_one_trip: f64,
    /// 好差评: how many ratings of each score, 1 (非常不满意) to 5 (非常满意).
    pub ratings: BTreeMap<String, u64>,
    /// Share of completed cases finished within the SLA (of those with one).
    pub within_sla: f64,
}

/// Working days from `day` to `today`, remembered per day: many tasks share a day.
struct Ages<'a> {
    calendar: &'a Calendar,
    today: String,
    known: HashMap<String, i64>,
}

impl Ages<'_> {
    fn since(&mut self, day: &str) -> i64 {
        if let Some(days) = self.known.get(day) {
            return *days;
        }
        let days = workdays(self.calendar, day, &self.today).unwrap_or(0);
        self.known.insert(day.to_string(), days);
        days
    }
}

/// The per-state figures from the waiting counters.
pub fn states(rows: &[rows::Waiting], calendar: &Calendar, today: &str) -> Vec<StateFigures> {
    let mut ages = Ages { calendar, today: today.to_string(), known: HashMap::new() };
    /// Process, item, step, department.
    type StateKey<'r> = (&'r str, &'r str, &'r str, &'r str);
    let mut by_state: BTreeMap<StateKey, (BTreeMap<i64, u64>, u64)> = BTreeMap::new();
    for row in rows {
        let entry = by_state.entry((&row.flow, &row.item, &row.step, &row.department)).or_default();
        *entry.0.entry(ages.since(&row.day)).or_default() += row.count;
        if row.due.as_deref().is_some_and(|due| due < today) {
            entry.1 += row.count;
        }
    }
    by_state
        .into_iter()
        .map(|((process, item, step, department), (histogram, overdue))| StateFigures {
            process: process.into(),
            item: item.into(),
            step: step.into(),
            department: department.into(),
            waiting: histogram.values().sum(),
            days: spread(&histogram),
            overdue,
        })
        .collect()
}

/// The longest-waiting tasks, with their cases' states (for the SLA and 补正).
pub fn longest(tasks: &[(rows::OpenTask, Option<CaseState>)], calendar: &Calendar, today: &str) -> Vec<LongWait> {
    let past = |due: Option<&str>| due.and_then(|due| workdays(calendar, due, today)).unwrap_or(0).max(0);
    tasks
        .iter()
        .map(|(task, case)| LongWait {
            case_id: task.case_id.clone(),
            process: task.flow.clone(),
            item: task.item.clone(),
            step: task.step.clone(),
            department: task.department.clone(),
            since: task.since.clone(),
            days: workdays(calendar, &date_of(&task.since), today).unwrap_or(0),
            days_past_task_limit: past(task.due.as_deref()),
            days_past_sla: past(case.as_ref().and_then(|c| c.deadlines.get("process")).map(|d| d.due.as_str())),
            awaiting_supplement: case.as_ref().is_some_and(|c| c.status == Status::AwaitingSupplement),
        })
        .collect()
}

/// The per-department figures: handling times and open tasks.
pub fn departments(handled: &[rows::Handled], waiting: &[rows::Waiting], today: &str) -> Vec<DepartmentFigures> {
    #[derive(Default)]
    struct Acc {
        histogram: BTreeMap<i64, u64>,
        within: u64,
        open: u64,
        overdue: u64,
    }
    let mut by_department: BTreeMap<&str, Acc> = BTreeMap::new();
    for row in handled {
        let acc = by_department.entry(&row.department).or_default();
        *acc.histogram.entry(row.days).or_default() += row.count;
        if row.within {
            acc.within += row.count;
        }
    }
    for row in waiting {
        let acc = by_department.entry(&row.department).or_default();
        acc.open += row.count;
        if row.due.as_deref().is_some_and(|due| due < today) {
            acc.overdue += row.count;
        }
    }
    by_department
        .into_iter()
        .map(|(department, acc)| {
            let handled: u64 = acc.histogram.values().sum();
            DepartmentFigures {
                department: department.into(),
                handled,
                days: spread(&acc.histogram),
                within_limit: share(acc.within, handled),
                open: acc.open,
                open_overdue: acc.overdue,
            }
        })
        .collect()
}

/// `part / whole`, rounded to 4 places; 1 for an empty whole (nothing was late).
fn share(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        return 1.0;
    }
    (part as f64 / whole as f64 * 10_000.0).round() / 10_000.0
}

pub fn warnings(latest: &[rows::Warning], counts: &[(String, bool, u64)]) -> Warnings {
    let mut open = BTreeMap::new();
    let mut past = BTreeMap::new();
    for (level, is_open, count) in counts {
        *(if *is_open { &mut open } else { &mut past }).entry(level.clone()).or_default() += count;
    }
    Warnings {
        open,
        past,
        latest: latest
            .iter()
            .map(|w| WarningEntry {
                case_id: w.case_id.clone(),
                process: w.flow.clone(),
                rule: w.scope.clone(),
                level: w.level.clone(),
                at: w.at.clone(),
                department: w.department.clone(),
                open: w.open,
            })
            .collect(),
    }
}

pub fn processes(counts: &[rows::ProcessCount]) -> Vec<ProcessFigures> {
    let mut by_flow: BTreeMap<&str, BTreeMap<&str, BTreeMap<String, u64>>> = BTreeMap::new();
    for row in counts.iter().filter(|r| r.count > 0) {
        by_flow.entry(&row.flow).or_default().entry(&row.metric).or_default().insert(row.key.clone(), row.count);
    }
    by_flow
        .into_iter()
        .map(|(flow, metrics)| {
            let get = |metric: &str| metrics.get(metric).cloned().unwrap_or_default();
            let trips = get("trips");
            let completed: u64 = trips.values().sum();
            let total_trips: u64 = trips.iter().map(|(k, n)| k.parse::<u64>().unwrap_or(0) * n).sum();
            let one: u64 = trips.iter().filter(|(k, _)| k.parse::<u64>().is_ok_and(|t| t <= 1)).map(|(_, n)| n).sum();
            let sla = get("sla_met");
            let met = sla.get("1").copied().unwrap_or(0);
            ProcessFigures {
                process: flow.into(),
                cases: get("status"),
                trips_per_case: if completed == 0 {
                    0.0
                } else {
                    (total_trips as f64 / completed as f64 * 100.0).round() / 100.0
                },
                at_most_one_trip: share(one, completed),
                trips,
                ratings: get("rating"),
                within_sla: share(met, met + sla.get("0").copied().unwrap_or(0)),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        for (values, expected) in [
            (vec![(1, 1), (2, 1), (3, 1), (4, 1)], (2, 4, 4)),
            (vec![(0, 9), (7, 1)], (0, 0, 7)),
            (vec![(0, 8), (5, 2)], (0, 5, 5)),
            (vec![(3, 1)], (3, 3, 3)),
            (vec![], (0, 0, 0)),
        ] {
            let histogram: BTreeMap<i64, u64> = values.into_iter().collect();
            let s = spread(&histogram);
            assert_eq!((s.p50, s.p90, s.max), expected, "{histogram:?}");
        }
    }
}
