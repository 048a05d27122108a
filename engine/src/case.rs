//! The pure heart of the engine: a case's state, the events that change it, and the decision
//! of which events a command produces. No I/O and no clock: the caller passes the time.
//!
//! A case holds a marking over its flow's state machine: the step states with an open task,
//! and the arrivals waiting at each parallel join. A command is decided against the state and
//! the compiled flow; it yields events, and [`CaseState::apply`] is the only way state
//! changes, so the state stored beside the events always equals the replay of those events.
//! Tokens move through structural states (fork, join, choice, end) as soon as they arrive;
//! a choice's guard is evaluated when the token arrives and the branch taken is recorded as an
//! event, so replay never evaluates a rule.

use std::collections::BTreeMap;

use calendar::Calendar;
use dsl::compile::{CompiledFlow, Event as Trigger, State, Transition};
use dsl::model::{Handling, WarningAt};
use petgraph::stable_graph::NodeIndex;
use petgraph::visit::EdgeRef;
use petgraph::Direction;
use serde::{Deserialize, Serialize};

/// Where a case stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Being handled: tasks are open.
    Open,
    /// Waiting for the applicant's supplementary materials (补正).
    AwaitingSupplement,
    /// Every step done: the result is delivered (办结).
    Completed,
    /// A department refused it (不予许可/不予受理).
    Rejected,
    /// The applicant withdrew it (撤回).
    Withdrawn,
    /// Ended by the engine: materials accepted as missing (容缺) did not come in time.
    Terminated,
}

impl Status {
    pub fn is_final(self) -> bool {
        matches!(self, Status::Completed | Status::Rejected | Status::Withdrawn | Status::Terminated)
    }
}

/// A task: a step of an item waiting for its department.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Task {
    pub item: String,
    pub step: String,
    pub department: String,
    /// When the task was opened (RFC 3339).
    pub since: String,
    /// Departments that must still co-sign (加签) before the step can complete.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cosign: Vec<String>,
    /// The officer the task was handed to (转办); until then any officer of the department.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignee: Option<String>,
}

/// An open task with its state node: how a case's `tasks` are written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TaskRecord {
    /// The task's state node: what `TaskOpened`, `Returned` and the other events name.
    pub node: u32,
    #[serde(flatten)]
    pub task: Task,
}

/// What happened to a case. Numbered per case by the store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum EventKind {
    Submitted {
        flow: String,
        version: String,
    },
    TaskOpened {
        node: u32,
        item: String,
        step: String,
        department: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        cosign: Vec<String>,
    },
    /// 转办: the task was handed to another officer of its department.
    Transferred {
        node: u32,
        to: String,
        reason: String,
    },
    /// 加签: a department co-signed a step.
    CoSigned {
        node: u32,
        department: String,
    },
    TaskCompleted {
        node: u32,
        department: String,
        /// The item's last step: its clock stops (the deadline is met, or was missed).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        finishes_item: bool,
    },
    /// 退回: the task went back to an earlier step.
    Returned {
        node: u32,
        to: u32,
    },
    JoinArrived {
        join: u32,
    },
    /// Every branch has arrived: the flow goes on past the join.
    Joined {
        join: u32,
    },
    /// A conditional branch was chosen; `guard` is the rule that held, `None` for `else`.
    BranchTaken {
        choice: u32,
        guard: Option<String>,
    },
    SupplementRequested {
        node: u32,
        materials: Vec<String>,
    },
    SupplementReceived {
        node: u32,
    },
    Rejected {
        node: u32,
        department: String,
        reason: String,
    },
    Withdrawn,
    Completed,
    /// 好差评: 1 (非常不满意) to 5 (非常满意).
    Rated {
        score: u8,
    },
    /// A clock starts: `scope` is `process` or an item's name; `due` the last working day.
    DeadlineSet {
        scope: String,
        due: String,
        yellow: Option<String>,
    },
    /// The clocks stop: those of `scopes` (补正: the process and the item, where the item
    /// says so), or every clock when `scopes` is empty (a special procedure).
    ClockPaused {
        reason: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        scopes: Vec<String>,
    },
    /// The clocks go on; every running deadline moves by the working days paused.
    ClockResumed {
        paused_days: i64,
        deadlines: Vec<(String, String, Option<String>)>,
        /// The 容缺 deadline, moved as well.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tolerance_due: Option<String>,
    },
    SpecialProcedureStarted {
        kind: String,
        reason: String,
    },
    SpecialProcedureEnded,
    /// 延长审批: more working days, with the approval that granted them.
    Extended {
        days: u32,
        approval: String,
        due: String,
    },
    /// 容缺受理: accepted with materials missing, due by `due`.
    Tolerated {
        node: u32,
        materials: Vec<String>,
        due: String,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        finishes_item: bool,
    },
    ToleratedMaterialsReceived,
    /// 电子监察: a yellow (deadline near) or red (overdue) warning.
    WarningRaised {
        scope: String,
        level: Level,
    },
    /// The materials accepted as missing did not come by their deadline.
    Terminated {
        reason: String,
    },
}

/// A warning level of electronic supervision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Yellow,
    Red,
}

/// A running clock: the last working day (`due`) and the day the yellow warning falls due.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Deadline {
    pub due: String,
    pub yellow: Option<String>,
    /// Levels already raised.
    pub raised: Vec<Level>,
    /// The day the item finished: its clock stands still from then on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished: Option<String>,
}

/// An event with the time it happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Event {
    pub at: String,
    #[serde(flatten)]
    pub kind: EventKind,
}

/// The projection of a case's events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CaseState {
    pub id: String,
    pub flow: String,
    pub version_id: String,
    pub status: Status,
    /// Events applied so far: the case's version for optimistic concurrency.
    pub version: u64,
    /// Open tasks by state node, written as a list of task records, each with its `node`
    /// (stores written before the records read as `[[node, task], …]` pairs too).
    #[serde(with = "task_records")]
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<TaskRecord>))]
    pub tasks: BTreeMap<u32, Task>,
    /// Arrivals so far at each parallel join, as `[[join node, arrivals], …]`.
    #[serde(with = "entries")]
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<(u32, u32)>))]
    pub joins: BTreeMap<u32, u32>,
    /// The task a supplement request (补正) holds, and the materials asked for.
    pub supplement: Option<(u32, Vec<String>)>,
    pub rating: Option<u8>,
    /// Clocks by scope: `process`, or an item's name.
    pub deadlines: BTreeMap<String, Deadline>,
    /// Since when (a date) the clocks are stopped, and why.
    pub paused: Option<(String, String)>,
    /// The clocks stopped: every one when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub paused_scopes: Vec<String>,
    /// A running special procedure (特别程序): its kind.
    pub special_procedure: Option<String>,
    /// Materials accepted as missing (容缺) and their deadline.
    pub tolerated: Option<(Vec<String>, String)>,
    pub submitted_at: String,
    pub updated_at: String,
}

impl CaseState {
    /// The state before any event.
    pub fn new(id: &str, flow: &CompiledFlow, at: &str) -> CaseState {
        CaseState {
            id: id.to_string(),
            flow: flow.name.clone(),
            version_id: flow.version.clone(),
            status: Status::Open,
            version: 0,
            tasks: BTreeMap::new(),
            joins: BTreeMap::new(),
            supplement: None,
            rating: None,
            deadlines: BTreeMap::new(),
            paused: None,
            paused_scopes: Vec::new(),
            special_procedure: None,
            tolerated: None,
            submitted_at: at.to_string(),
            updated_at: at.to_string(),
        }
    }

    /// Applies one event. Events are facts: this never fails, whatever the order it is given.
    pub fn apply(&mut self, event: &Event) {
        self.version += 1;
        self.updated_at = event.at.clone();
        match &event.kind {
            EventKind::Submitted { .. } => self.status = Status::Open,
            EventKind::TaskOpened { node, item, step, department, cosign } => {
                self.tasks.insert(
                    *node,
                    Task {
                        item: item.clone(),
                        step: step.clone(),
                        department: department.clone(),
                        since: event.at.clone(),
                        cosign: cosign.clone(),
                        assignee: None,
                    },
                );
            }
            EventKind::TaskCompleted { node, finishes_item, .. } => {
                if let Some(task) = self.tasks.remove(node) {
                    self.finish(&step_scope(&task.item, &task.step), &event.at);
                    if *finishes_item {
                        self.finish(&task.item, &event.at);
                    }
                }
            }
            EventKind::Returned { node, .. } => {
                if let Some(task) = self.tasks.remove(node) {
                    self.finish(&step_scope(&task.item, &task.step), &event.at);
                }
            }
            EventKind::JoinArrived { join } => *self.joins.entry(*join).or_default() += 1,
            EventKind::Joined { join } => {
                self.joins.remove(join);
            }
            EventKind::BranchTaken { .. } => {}
            EventKind::SupplementRequested { node, materials } => {
                self.supplement = Some((*node, materials.clone()));
                self.status = Status::AwaitingSupplement;
            }
            EventKind::SupplementReceived { .. } => {
                self.supplement = None;
                self.status = Status::Open;
            }
            EventKind::Rejected { .. } => {
                self.tasks.clear();
                self.status = Status::Rejected;
            }
            EventKind::Withdrawn => {
                self.tasks.clear();
                self.status = Status::Withdrawn;
            }
            EventKind::Completed => {
                self.tasks.clear();
                self.joins.clear();
                self.status = Status::Completed;
            }
            EventKind::Rated { score } => self.rating = Some(*score),
            EventKind::Transferred { node, to, .. } => {
                if let Some(task) = self.tasks.get_mut(node) {
                    task.assignee = Some(to.clone());
                }
            }
            EventKind::CoSigned { node, department } => {
                if let Some(task) = self.tasks.get_mut(node) {
                    task.cosign.retain(|d| d != department);
                }
            }
            EventKind::DeadlineSet { scope, due, yellow } => {
                self.deadlines.insert(
                    scope.clone(),
                    Deadline { due: due.clone(), yellow: yellow.clone(), raised: Vec::new(), finished: None },
                );
            }
            EventKind::ClockPaused { reason, scopes } => {
                self.paused = Some((date_of(&event.at), reason.clone()));
                self.paused_scopes = scopes.clone();
            }
            EventKind::ClockResumed { deadlines, tolerance_due, .. } => {
                self.paused = None;
                self.paused_scopes.clear();
                if let (Some((_, due)), Some(moved)) = (&mut self.tolerated, tolerance_due) {
                    *due = moved.clone();
                }
                for (scope, due, yellow) in deadlines {
                    if let Some(d) = self.deadlines.get_mut(scope) {
                        d.due = due.clone();
                        d.yellow = yellow.clone();
                    }
                }
            }
            EventKind::SpecialProcedureStarted { kind, .. } => self.special_procedure = Some(kind.clone()),
            EventKind::SpecialProcedureEnded => self.special_procedure = None,
            EventKind::Extended { due, .. } => {
                if let Some(d) = self.deadlines.get_mut("process") {
                    d.due = due.clone();
                }
            }
            EventKind::Tolerated { node, materials, due, finishes_item } => {
                if let Some(task) = self.tasks.remove(node) {
                    self.finish(&step_scope(&task.item, &task.step), &event.at);
                    if *finishes_item {
                        self.finish(&task.item, &event.at);
                    }
                }
                self.tolerated = Some((materials.clone(), due.clone()));
            }
            EventKind::ToleratedMaterialsReceived => self.tolerated = None,
            EventKind::WarningRaised { scope, level } => {
                if let Some(d) = self.deadlines.get_mut(scope) {
                    if !d.raised.contains(level) {
                        d.raised.push(*level);
                    }
                }
            }
            EventKind::Terminated { .. } => {
                self.tasks.clear();
                self.status = Status::Terminated;
            }
        }
    }

    /// The clock of `scope` (an item, or a step with a limit) stops: it finished on the day of `at`.
    fn finish(&mut self, scope: &str, at: &str) {
        if let Some(deadline) = self.deadlines.get_mut(scope) {
            deadline.finished = Some(date_of(at));
        }
    }

    /// Whether the clock of `scope` stands still now.
    pub fn is_paused(&self, scope: &str) -> bool {
        self.paused.is_some() && (self.paused_scopes.is_empty() || self.paused_scopes.iter().any(|s| s == scope))
    }

    /// When each pending timer falls due (RFC 3339, UTC), by name: the warnings not yet raised
    /// and the 容缺 deadline. Derived from the state, so a timer that has fired (its event
    /// applied) is gone, and one that fell due while the engine was down is still here. A
    /// stopped clock (paused, or its item finished) has none.
    pub fn timers(&self) -> Vec<(String, String)> {
        if self.status.is_final() {
            return Vec::new();
        }
        let mut timers = Vec::new();
        for (scope, deadline) in &self.deadlines {
            if deadline.finished.is_some() || self.is_paused(scope) {
                continue;
            }
            if let (Some(yellow), false) = (&deadline.yellow, deadline.raised.contains(&Level::Yellow)) {
                timers.push((format!("yellow:{scope}"), end_of_day(yellow)));
            }
            if !deadline.raised.contains(&Level::Red) {
                timers.push((format!("red:{scope}"), end_of_day(&deadline.due)));
            }
        }
        if let (Some((_, due)), false) = (&self.tolerated, self.paused.is_some() && self.paused_scopes.is_empty()) {
            timers.push(("tolerance".into(), end_of_day(due)));
        }
        timers
    }

    /// The state the events give, from the beginning.
    pub fn replay(id: &str, flow: &CompiledFlow, events: &[Event]) -> CaseState {
        let at = events.first().map_or("", |e| e.at.as_str());
        let mut state = CaseState::new(id, flow, at);
        for event in events {
            state.apply(event);
        }
        state
    }
}

/// The clock scope of a step with its own limit: `item/step`.
pub fn step_scope(item: &str, step: &str) -> String {
    format!("{item}/{step}")
}

/// The date (YYYY-MM-DD) of an RFC 3339 instant, in Beijing time.
pub fn date_of(at: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(at)
        .map(|t| (t.with_timezone(&chrono::Utc) + chrono::Duration::hours(8)).date_naive().to_string())
        .unwrap_or_else(|_| at.chars().take(10).collect())
}

/// The instant a working day closes: midnight after it, Beijing time, in UTC.
pub fn end_of_day(date: &str) -> String {
    calendar::parse_date(date)
        .ok()
        .and_then(|d| d.succ_opt())
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| (t - chrono::Duration::hours(8)).and_utc().to_rfc3339())
        .unwrap_or_default()
}

/// Maps keyed by state node, written as `[[node, value], …]`: JSON object keys are strings,
/// which serde cannot turn back into numbers inside a tagged enum.
mod entries {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<V: Serialize, S: Serializer>(map: &BTreeMap<u32, V>, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(map.iter())
    }

    pub fn deserialize<'de, V: Deserialize<'de>, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<BTreeMap<u32, V>, D::Error> {
        Ok(Vec::<(u32, V)>::deserialize(deserializer)?.into_iter().collect())
    }
}

/// A case's open tasks, written as a list of [`TaskRecord`]s (`[{"node": 3, "item": …}, …]`).
/// Reads that form and the `[[node, task], …]` pairs written before it, which stored cases
/// and remembered answers (idempotency) may still hold.
mod task_records {
    use std::collections::BTreeMap;
    use std::fmt;

    use serde::de::value::MapAccessDeserializer;
    use serde::de::{MapAccess, SeqAccess, Visitor};
    use serde::ser::SerializeSeq;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::{Task, TaskRecord};

    /// A record borrowing its task, so that writing a case clones nothing.
    #[derive(Serialize)]
    struct Written<'a> {
        node: u32,
        #[serde(flatten)]
        task: &'a Task,
    }

    pub fn serialize<S: Serializer>(tasks: &BTreeMap<u32, Task>, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(tasks.len()))?;
        for (node, task) in tasks {
            seq.serialize_element(&Written { node: *node, task })?;
        }
        seq.end()
    }

    /// One element: a record (a map) or an old `[node, task]` pair (a sequence).
    struct Entry(u32, Task);

    impl<'de> Deserialize<'de> for Entry {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Entry, D::Error> {
            struct EntryVisitor;
            impl<'de> Visitor<'de> for EntryVisitor {
                type Value = Entry;

                fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                    f.write_str("a task record `{node, item, step, …}` or a `[node, task]` pair")
                }

                fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Entry, A::Error> {
                    let record = TaskRecord::deserialize(MapAccessDeserializer::new(map))?;
                    Ok(Entry(record.node, record.task))
                }

                fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Entry, A::Error> {
                    use serde::de::Error;
                    let node = seq.next_element()?.ok_or_else(|| A::Error::invalid_length(0, &self))?;
                    let task = seq.next_element()?.ok_or_else(|| A::Error::invalid_length(1, &self))?;
                    if seq.next_element::<serde::de::IgnoredAny>()?.is_some() {
                        return Err(A::Error::invalid_length(3, &self));
                    }
                    Ok(Entry(node, task))
                }
            }
            deserializer.deserialize_any(EntryVisitor)
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<BTreeMap<u32, Task>, D::Error> {
        Ok(Vec::<Entry>::deserialize(deserializer)?.into_iter().map(|Entry(node, task)| (node, task)).collect())
    }
}

/// What an officer or the applicant asks of a case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case", tag = "command")]
pub enum Command {
    /// Completes a step (受理, 审查, 决定, 送达 …). `next` names the step to go to when the
    /// flow offers several.
    Complete {
        item: String,
        step: String,
        next: Option<String>,
    },
    /// 退回: sends the task back to an earlier step.
    Return {
        item: String,
        step: String,
        to: String,
    },
    /// 补正: lists every missing or wrong material at once.
    RequestSupplement {
        item: String,
        step: String,
        materials: Vec<String>,
    },
    SupplementReceived,
    Reject {
        item: String,
        step: String,
        reason: String,
    },
    Withdraw,
    Rate {
        score: u8,
    },
    /// 容缺受理: completes the step with materials missing, due within `days` working days
    /// (and never after the process deadline).
    Tolerate {
        item: String,
        step: String,
        materials: Vec<String>,
        days: u32,
    },
    ToleratedReceived,
    /// 特别程序 (hearing, expert review, inspection, testing…): time that does not count.
    StartSpecialProcedure {
        kind: String,
        reason: String,
    },
    EndSpecialProcedure,
    /// 延长审批: more working days for the process, with the approval that granted them.
    Extend {
        days: u32,
        approval: String,
    },
    /// 加签: an officer of a department the step names co-signs it.
    CoSign {
        item: String,
        step: String,
    },
    /// 转办: hands the task to another officer of its department, who alone may act on it
    /// from then on.
    Transfer {
        item: String,
        step: String,
        to: String,
        reason: String,
    },
}

/// The moment a decision is made, and the calendar its clocks count on.
pub struct Now<'a> {
    /// RFC 3339.
    pub at: String,
    pub calendar: &'a Calendar,
}

/// Who acts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "role")]
pub enum Actor {
    /// An officer of a department; `officer` identifies the person when the caller knows it
    /// (a task handed to someone (转办) can be acted on only by them).
    Officer {
        department: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        officer: Option<String>,
    },
    Applicant,
    Supervisor,
}

impl Actor {
    /// An officer of `department` whose identity is not known.
    pub fn department(department: impl Into<String>) -> Actor {
        Actor::Officer { department: department.into(), officer: None }
    }

    /// An identified officer of `department`.
    pub fn officer(department: impl Into<String>, officer: impl Into<String>) -> Actor {
        Actor::Officer { department: department.into(), officer: Some(officer.into()) }
    }

    /// `applicant`, `supervisor`, a department (`samr`) or an officer of one (`samr/li.wei`):
    /// how the CLI and scenarios name who acts.
    pub fn parse(by: &str) -> Actor {
        match by {
            "applicant" => Actor::Applicant,
            "supervisor" => Actor::Supervisor,
            other => match other.split_once('/') {
                Some((department, officer)) => Actor::officer(department, officer),
                None => Actor::department(other),
            },
        }
    }
}

/// A command that is not allowed now. Nothing is changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
#[serde(rename_all = "snake_case", tag = "code", content = "message")]
pub enum CommandError {
    #[error("the case is {0:?}: nothing more can be done")]
    Closed(Status),
    #[error("no open task for step `{step}` of item `{item}`")]
    NoSuchTask { item: String, step: String },
    #[error("the task belongs to {owner}, not to {actor}")]
    NotYourTask { owner: String, actor: String },
    #[error("step `{step}` can go on to {options}: say which with `next`")]
    ChooseNext { step: String, options: String },
    #[error("step `{step}` cannot go on to `{next}`")]
    NoSuchNext { step: String, next: String },
    #[error("step `{step}` cannot return to `{to}`: only to an earlier step it names")]
    NoSuchReturn { step: String, to: String },
    #[error("the case waits for supplementary materials")]
    AwaitingSupplement,
    #[error("no supplement was requested")]
    NoSupplementRequested,
    #[error("a supplement request must list the materials")]
    NoMaterials,
    #[error("only {0} may do this")]
    Forbidden(&'static str),
    #[error("a rating is from 1 to 5")]
    BadRating,
    #[error("the case is not completed yet: rate it once it is")]
    NotCompleted,
    #[error("the case is already rated")]
    AlreadyRated,
    #[error("rule failed: {0}")]
    Rule(String),
    #[error("{0}")]
    Calendar(String),
    #[error("no special procedure is running")]
    NoSpecialProcedure,
    #[error("a special procedure is already running")]
    SpecialProcedureRunning,
    #[error("no materials were accepted as missing")]
    NothingTolerated,
    #[error("the process has no deadline to extend")]
    NoDeadline,
    #[error("the step waits for the co-signature of {0}")]
    CosignPending(String),
    #[error("{0} is not asked to co-sign this step")]
    NotACosigner(String),
    #[error("the task was handed to officer {assignee}: only they may act on it")]
    AssignedToOther { assignee: String },
    #[error("a transfer needs the officer to hand the task to")]
    NoTransferTarget,
    #[error("material `{material}` of item `{item}` may not be missing at acceptance (it is not marked `tolerated`)")]
    NotTolerable { item: String, material: String },
}

/// Evaluates a guard; the engine supplies it with the case's facts bound.
pub trait Guards {
    fn holds(&self, guard: &str) -> Result<bool, String>;
}

/// The events that start a case: submission, then tokens from the start state onwards.
pub fn start(
    flow: &CompiledFlow,
    state: &CaseState,
    now: &Now,
    guards: &dyn Guards,
) -> Result<Vec<Event>, CommandError> {
    let mut run = Run::new(flow, state, now, guards);
    run.emit(EventKind::Submitted { flow: flow.name.clone(), version: flow.version.clone() });
    if let Some(sla) = flow.process.sla {
        let yellow_days = flow.process.warnings.iter().find_map(|w| match w.at {
            WarningAt::PercentOfSla(percent) if w.level == dsl::model::WarningLevel::Yellow => {
                Some(sla * percent / 100)
            }
            _ => None,
        });
        run.set_deadline("process", sla, yellow_days)?;
    }
    run.leave(flow.start, |_| true)?;
    Ok(run.events)
}

/// The events a command produces, or why it is not allowed.
pub fn decide(
    flow: &CompiledFlow,
    state: &CaseState,
    command: &Command,
    actor: &Actor,
    now: &Now,
    guards: &dyn Guards,
) -> Result<Vec<Event>, CommandError> {
    if state.status.is_final() && !matches!(command, Command::Rate { .. }) {
        return Err(CommandError::Closed(state.status));
    }
    let mut run = Run::new(flow, state, now, guards);
    match command {
        Command::Tolerate { item, step, materials, days } => {
            if materials.is_empty() {
                return Err(CommandError::NoMaterials);
            }
            let node = run.task(item, step, actor)?;
            run.not_held(node)?;
            let declared = flow.items.iter().find(|i| &i.name == item);
            for material in materials {
                if !declared.is_some_and(|i| i.materials.iter().any(|m| &m.name == material && m.tolerated)) {
                    return Err(CommandError::NotTolerable { item: item.clone(), material: material.clone() });
                }
            }
            let chosen = run.forward(node, step, &None)?;
            let finishes_item = run.leaves_item(chosen, item);
            let mut due = run.due(&run.today(), *days)?;
            // Never later than the promised limit of the whole process.
            if let Some(process) = run.state.deadlines.get("process") {
                if process.due < due {
                    due = process.due.clone();
                }
            }
            run.emit(EventKind::Tolerated {
                node: node.index() as u32,
                materials: materials.clone(),
                due,
                finishes_item,
            });
            run.arrive(chosen)?;
        }
        Command::ToleratedReceived => {
            if state.tolerated.is_none() {
                return Err(CommandError::NothingTolerated);
            }
            run.emit(EventKind::ToleratedMaterialsReceived);
        }
        Command::StartSpecialProcedure { kind, reason } => {
            run.officer_with_task(actor)?;
            if state.special_procedure.is_some() {
                return Err(CommandError::SpecialProcedureRunning);
            }
            run.emit(EventKind::SpecialProcedureStarted { kind: kind.clone(), reason: reason.clone() });
            run.pause(&format!("特别程序: {kind}"), Vec::new());
        }
        Command::EndSpecialProcedure => {
            run.officer_with_task(actor)?;
            if state.special_procedure.is_none() {
                return Err(CommandError::NoSpecialProcedure);
            }
            run.emit(EventKind::SpecialProcedureEnded);
            run.resume()?;
        }
        Command::Extend { days, approval } => {
            run.officer_with_task(actor)?;
            let current = state.deadlines.get("process").ok_or(CommandError::NoDeadline)?;
            let due = run.due(&current.due, *days)?;
            run.emit(EventKind::Extended { days: *days, approval: approval.clone(), due });
        }
        Command::Transfer { item, step, to, reason } => {
            if to.trim().is_empty() {
                return Err(CommandError::NoTransferTarget);
            }
            let node = run.task(item, step, actor)?;
            run.emit(EventKind::Transferred { node: node.index() as u32, to: to.clone(), reason: reason.clone() });
        }
        Command::CoSign { item, step } => {
            let Actor::Officer { department, .. } = actor else { return Err(CommandError::Forbidden("an officer")) };
            let (node, task) = state
                .tasks
                .iter()
                .find(|(_, t)| &t.item == item && &t.step == step)
                .ok_or_else(|| CommandError::NoSuchTask { item: item.clone(), step: step.clone() })?;
            if !task.cosign.contains(department) {
                return Err(CommandError::NotACosigner(department.clone()));
            }
            run.emit(EventKind::CoSigned { node: *node, department: department.clone() });
        }
        Command::Complete { item, step, next } => {
            let node = run.task(item, step, actor)?;
            run.not_held(node)?;
            if let Some(task) = state.tasks.get(&(node.index() as u32)) {
                if !task.cosign.is_empty() {
                    return Err(CommandError::CosignPending(task.cosign.join(", ")));
                }
            }
            let chosen = run.forward(node, step, next)?;
            let department = state.tasks[&(node.index() as u32)].department.clone();
            let finishes_item = run.leaves_item(chosen, item);
            run.emit(EventKind::TaskCompleted { node: node.index() as u32, department, finishes_item });
            run.arrive(chosen)?;
        }
        Command::Return { item, step, to } => {
            let node = run.task(item, step, actor)?;
            run.not_held(node)?;
            let target = flow
                .graph
                .edges_directed(node, Direction::Outgoing)
                .filter(|e| e.weight().event == Trigger::Back)
                .map(|e| e.target())
                .find(|t| step_name(flow, *t).as_deref() == Some(to.as_str()))
                .ok_or_else(|| CommandError::NoSuchReturn { step: step.clone(), to: to.clone() })?;
            run.emit(EventKind::Returned { node: node.index() as u32, to: target.index() as u32 });
            run.arrive(target)?;
        }
        Command::RequestSupplement { item, step, materials } => {
            if state.status == Status::AwaitingSupplement {
                return Err(CommandError::AwaitingSupplement);
            }
            if materials.is_empty() {
                return Err(CommandError::NoMaterials);
            }
            let node = run.task(item, step, actor)?;
            run.emit(EventKind::SupplementRequested { node: node.index() as u32, materials: materials.clone() });
            let pauses = flow.items.iter().find(|i| &i.name == item).is_some_and(|i| i.supplement_pauses_clock);
            if pauses {
                // The applicant's time stops the process clock and this item's, not the
                // clocks of items other departments handle meanwhile.
                run.pause("补正", vec!["process".to_string(), item.clone()]);
            }
        }
        Command::SupplementReceived => {
            let Some((node, _)) = &state.supplement else { return Err(CommandError::NoSupplementRequested) };
            if let Actor::Officer { department, .. } = actor {
                let owner = &state.tasks.get(node).map(|t| t.department.clone()).unwrap_or_default();
                if owner != department {
                    return Err(CommandError::NotYourTask { owner: owner.clone(), actor: department.clone() });
                }
            }
            run.emit(EventKind::SupplementReceived { node: *node });
            if run.state.paused.as_ref().is_some_and(|(_, reason)| reason == "补正") {
                run.resume()?;
            }
        }
        Command::Reject { item, step, reason } => {
            let node = run.task(item, step, actor)?;
            let department = state.tasks[&(node.index() as u32)].department.clone();
            run.emit(EventKind::Rejected { node: node.index() as u32, department, reason: reason.clone() });
        }
        Command::Withdraw => {
            if !matches!(actor, Actor::Applicant) {
                return Err(CommandError::Forbidden("the applicant"));
            }
            run.emit(EventKind::Withdrawn);
        }
        Command::Rate { score } => {
            if !matches!(actor, Actor::Applicant) {
                return Err(CommandError::Forbidden("the applicant"));
            }
            if !(1..=5).contains(score) {
                return Err(CommandError::BadRating);
            }
            if state.status != Status::Completed {
                return Err(CommandError::NotCompleted);
            }
            if state.rating.is_some() {
                return Err(CommandError::AlreadyRated);
            }
            run.emit(EventKind::Rated { score: *score });
        }
    }
    Ok(run.events)
}

/// The events of the timers due by `now`: warnings, and the end of a case whose materials
/// accepted as missing (容缺) did not come. A timer no longer pending in the state gives none,
/// so firing twice is harmless.
pub fn fire_timers(state: &CaseState, now: &str) -> Vec<Event> {
    let mut events = Vec::new();
    let mut timers = state.timers();
    timers.sort_by(|a, b| a.1.cmp(&b.1).then(a.0.cmp(&b.0)));
    for (name, due) in timers {
        if due.as_str() > now {
            continue;
        }
        let kind = match name.split_once(':') {
            Some(("yellow", scope)) => EventKind::WarningRaised { scope: scope.to_string(), level: Level::Yellow },
            Some(("red", scope)) => EventKind::WarningRaised { scope: scope.to_string(), level: Level::Red },
            _ => EventKind::Terminated { reason: "容缺 materials not supplied by their deadline".into() },
        };
        let terminal = matches!(kind, EventKind::Terminated { .. });
        events.push(Event { at: now.to_string(), kind });
        if terminal {
            break;
        }
    }
    events
}

fn step_name(flow: &CompiledFlow, node: NodeIndex) -> Option<String> {
    match flow.graph.node_weight(node) {
        Some(State::Step { step, .. }) => Some(step.clone()),
        _ => None,
    }
}

/// Events being produced, applied as they are so that later decisions see them.
struct Run<'a> {
    flow: &'a CompiledFlow,
    state: CaseState,
    events: Vec<Event>,
    now: &'a Now<'a>,
    guards: &'a dyn Guards,
}

impl<'a> Run<'a> {
    fn new(flow: &'a CompiledFlow, state: &CaseState, now: &'a Now<'a>, guards: &'a dyn Guards) -> Run<'a> {
        Run { flow, state: state.clone(), events: Vec::new(), now, guards }
    }

    fn today(&self) -> String {
        date_of(&self.now.at)
    }

    /// The last working day of a limit of `days` working days starting on `from`.
    fn due(&self, from: &str, days: u32) -> Result<String, CommandError> {
        let start = calendar::parse_date(from).map_err(|e| CommandError::Calendar(e.to_string()))?;
        self.now
            .calendar
            .due_date(start, days)
            .map(|d| d.to_string())
            .map_err(|e| CommandError::Calendar(e.to_string()))
    }

    fn set_deadline(&mut self, scope: &str, days: u32, yellow_days: Option<u32>) -> Result<(), CommandError> {
        let today = self.today();
        let due = self.due(&today, days)?;
        let yellow = yellow_days.map(|d| self.due(&today, d)).transpose()?;
        self.emit(EventKind::DeadlineSet { scope: scope.to_string(), due, yellow });
        Ok(())
    }

    fn pause(&mut self, reason: &str, scopes: Vec<String>) {
        if self.state.paused.is_none() {
            self.emit(EventKind::ClockPaused { reason: reason.to_string(), scopes });
        }
    }

    /// Refuses to move a task that waits for the applicant's supplementary materials (补正);
    /// the other tasks of the case go on.
    fn not_held(&self, node: NodeIndex) -> Result<(), CommandError> {
        match &self.state.supplement {
            Some((held, _)) if *held == node.index() as u32 => Err(CommandError::AwaitingSupplement),
            _ => Ok(()),
        }
    }

    /// Whether moving on to `next` leaves `item`: its last step is done.
    fn leaves_item(&self, next: NodeIndex, item: &str) -> bool {
        !matches!(self.flow.graph.node_weight(next), Some(State::Step { item: other, .. }) if other == item)
    }

    /// Restarts the clocks: every deadline moves by the working days they stood still.
    fn resume(&mut self) -> Result<(), CommandError> {
        let Some((since, _)) = self.state.paused.clone() else { return Ok(()) };
        let (from, to) = (calendar::parse_date(&since), calendar::parse_date(&self.today()));
        let (Ok(from), Ok(to)) = (from, to) else { return Err(CommandError::Calendar("bad pause dates".into())) };
        let paused_days =
            self.now.calendar.workdays_between(from, to).map_err(|e| CommandError::Calendar(e.to_string()))?;
        let shift = u32::try_from(paused_days.max(0)).unwrap_or(0);
        let mut deadlines = Vec::new();
        for (scope, deadline) in &self.state.deadlines {
            if deadline.finished.is_some() || !self.state.is_paused(scope) {
                continue;
            }
            let due = self.due(&deadline.due, shift)?;
            let yellow = deadline.yellow.as_ref().map(|y| self.due(y, shift)).transpose()?;
            deadlines.push((scope.clone(), due, yellow));
        }
        let tolerance_due = self.state.tolerated.as_ref().map(|(_, due)| self.due(due, shift)).transpose()?;
        self.emit(EventKind::ClockResumed { paused_days, deadlines, tolerance_due });
        Ok(())
    }

    /// An officer with an open task on the case (special procedures and extensions).
    fn officer_with_task(&self, actor: &Actor) -> Result<(), CommandError> {
        match actor {
            Actor::Officer { department, .. } if self.state.tasks.values().any(|t| &t.department == department) => {
                Ok(())
            }
            Actor::Supervisor => Ok(()),
            _ => Err(CommandError::Forbidden("an officer of a department with an open task")),
        }
    }

    /// Where completing `node` leads: the only way on, or the step named `next`.
    fn forward(&self, node: NodeIndex, step: &str, next: &Option<String>) -> Result<NodeIndex, CommandError> {
        let forward: Vec<(NodeIndex, Option<String>)> = self
            .flow
            .graph
            .edges_directed(node, Direction::Outgoing)
            .filter(|e| e.weight().event == Trigger::Complete)
            .map(|e| (e.target(), step_name(self.flow, e.target())))
            .collect();
        match (forward.as_slice(), next) {
            ([only], None) => Ok(only.0),
            (_, Some(next)) => forward
                .iter()
                .find(|(_, name)| name.as_deref() == Some(next.as_str()))
                .map(|(n, _)| *n)
                .ok_or_else(|| CommandError::NoSuchNext { step: step.to_string(), next: next.clone() }),
            _ => {
                let options: Vec<String> =
                    forward.iter().map(|(_, n)| format!("`{}`", n.as_deref().unwrap_or("the next item"))).collect();
                Err(CommandError::ChooseNext { step: step.to_string(), options: options.join(" or ") })
            }
        }
    }

    fn emit(&mut self, kind: EventKind) {
        let event = Event { at: self.now.at.clone(), kind };
        self.state.apply(&event);
        self.events.push(event);
    }

    /// The open task for `item`/`step`, which `actor` may act on.
    fn task(&self, item: &str, step: &str, actor: &Actor) -> Result<NodeIndex, CommandError> {
        let (node, task) = self
            .state
            .tasks
            .iter()
            .find(|(_, t)| t.item == item && t.step == step)
            .ok_or_else(|| CommandError::NoSuchTask { item: item.to_string(), step: step.to_string() })?;
        match (actor, &task.assignee) {
            (Actor::Officer { department, .. }, _) if *department != task.department => {
                Err(CommandError::NotYourTask { owner: task.department.clone(), actor: department.clone() })
            }
            (Actor::Officer { officer, .. }, Some(assignee)) if officer.as_ref() != Some(assignee) => {
                Err(CommandError::AssignedToOther { assignee: assignee.clone() })
            }
            (Actor::Applicant, _) => Err(CommandError::Forbidden("an officer of the department")),
            _ => Ok(NodeIndex::new(*node as usize)),
        }
    }

    /// Follows the outgoing transitions of `node` that `take` accepts.
    fn leave(&mut self, node: NodeIndex, take: impl Fn(&Transition) -> bool) -> Result<(), CommandError> {
        let mut targets: Vec<NodeIndex> = self
            .flow
            .graph
            .edges_directed(node, Direction::Outgoing)
            .filter(|e| take(e.weight()))
            .map(|e| e.target())
            .collect();
        // petgraph lists the newest edge first: parallel branches open in source order.
        targets.reverse();
        for target in targets {
            self.arrive(target)?;
        }
        Ok(())
    }

    /// A token arrives at `node`: open a task, or pass through a structural state.
    fn arrive(&mut self, node: NodeIndex) -> Result<(), CommandError> {
        let Some(state) = self.flow.graph.node_weight(node) else { return Ok(()) };
        match state {
            State::Step { item, step, department, cosign, limit, .. } => {
                let entering = !self.state.deadlines.contains_key(item.as_str());
                let promised = self
                    .flow
                    .items
                    .iter()
                    .find(|i| &i.name == item)
                    .filter(|i| i.handling == Handling::Promised)
                    .map(|i| i.promised_days());
                if let (true, Some(days)) = (entering, promised) {
                    self.set_deadline(item, days, None)?;
                }
                // A step's own limit counts from each time it opens (again after a 退回).
                if let Some(days) = limit {
                    self.set_deadline(&step_scope(item, step), *days, None)?;
                }
                self.emit(EventKind::TaskOpened {
                    node: node.index() as u32,
                    item: item.clone(),
                    step: step.clone(),
                    department: department.clone(),
                    cosign: cosign.clone(),
                })
            }
            State::Start => self.leave(node, |_| true)?,
            State::End => self.emit(EventKind::Completed),
            State::Fork => self.leave(node, |_| true)?,
            State::Join { branches } => {
                let key = node.index() as u32;
                self.emit(EventKind::JoinArrived { join: key });
                let arrived = self.state.joins.get(&key).copied().unwrap_or(0);
                if arrived as usize >= *branches {
                    self.emit(EventKind::Joined { join: key });
                    self.leave(node, |_| true)?;
                }
            }
            State::Choice => {
                let edges: Vec<(NodeIndex, Option<String>, Trigger)> = self
                    .flow
                    .graph
                    .edges_directed(node, Direction::Outgoing)
                    .map(|e| (e.target(), e.weight().guard.clone(), e.weight().event))
                    .collect();
                // Guards in source order (edge insertion order is reversed by petgraph).
                let mut chosen = None;
                for (target, guard, _) in edges.iter().rev().filter(|(_, g, _)| g.is_some()) {
                    let guard = guard.as_deref().unwrap_or("true");
                    if self.guards.holds(guard).map_err(CommandError::Rule)? {
                        chosen = Some((*target, Some(guard.to_string())));
                        break;
                    }
                }
                let chosen = chosen.or_else(|| {
                    edges.iter().find(|(_, _, event)| *event == Trigger::Otherwise).map(|(t, _, _)| (*t, None))
                });
                if let Some((target, guard)) = chosen {
                    self.emit(EventKind::BranchTaken { choice: node.index() as u32, guard });
                    self.arrive(target)?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A case as stores wrote it before tasks were records: `tasks` as `[[node, task], …]`.
    const OLD_FORM: &str = r#"{
        "id": "C-20260930-0001", "flow": "p", "version_id": "9f2c", "status": "open", "version": 7,
        "tasks": [
            [2, {"item": "registration", "step": "review", "department": "samr",
                 "since": "2026-09-30T01:30:00+00:00", "assignee": "li"}],
            [5, {"item": "seal", "step": "accept", "department": "psb",
                 "since": "2026-09-30T01:30:00+00:00", "cosign": ["tax"]}]
        ],
        "joins": [[9, 1]],
        "supplement": null, "rating": null,
        "deadlines": {"process": {"due": "2026-10-12", "yellow": "2026-10-10", "raised": ["yellow"]}},
        "paused": null, "special_procedure": null, "tolerated": null,
        "submitted_at": "2026-09-30T01:00:00+00:00", "updated_at": "2026-09-30T01:30:00+00:00"
    }"#;

    fn old_state() -> CaseState {
        serde_json::from_str(OLD_FORM).expect("a state stored in the old form still reads")
    }

    #[test]
    fn a_state_stored_with_task_pairs_still_loads() {
        let state = old_state();
        assert_eq!(state.tasks.len(), 2);
        assert_eq!(state.tasks[&2].assignee.as_deref(), Some("li"));
        assert_eq!(state.tasks[&5].cosign, ["tax"]);
        assert_eq!(state.tasks[&5].department, "psb");
        assert_eq!(state.joins[&9], 1);
        assert_eq!(state.deadlines["process"].raised, [Level::Yellow]);
        // A submission's answer remembered under an idempotency key holds the old form too,
        // inside the `outcome`-tagged enum (which buffers the case before reading it).
        let remembered = format!(r#"{{"outcome": "accepted", "case": {OLD_FORM}}}"#);
        match serde_json::from_str::<crate::Submitted>(&remembered).expect("a remembered answer reads") {
            crate::Submitted::Accepted { case } => assert_eq!(*case, state),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn tasks_are_written_as_records_and_read_back() {
        let state = old_state();
        let written = serde_json::to_value(&state).expect("writes");
        assert_eq!(
            written["tasks"],
            serde_json::json!([
                {"node": 2, "item": "registration", "step": "review", "department": "samr",
                 "since": "2026-09-30T01:30:00+00:00", "assignee": "li"},
                {"node": 5, "item": "seal", "step": "accept", "department": "psb",
                 "since": "2026-09-30T01:30:00+00:00", "cosign": ["tax"]}
            ])
        );
        let read: CaseState = serde_json::from_value(written).expect("reads its own form");
        assert_eq!(read, state);
        // Both forms in one list (never written, but nothing to refuse), and a bad element.
        let mixed = serde_json::json!([[2, {"item": "a", "step": "b", "department": "c", "since": "d"}],
            {"node": 3, "item": "a", "step": "e", "department": "c", "since": "d"}]);
        let mut value = serde_json::to_value(&state).expect("writes");
        value["tasks"] = mixed;
        let read: CaseState = serde_json::from_value(value.clone()).expect("reads");
        assert_eq!(read.tasks.keys().copied().collect::<Vec<_>>(), [2, 3]);
        value["tasks"] = serde_json::json!([[2]]);
        assert!(serde_json::from_value::<CaseState>(value.clone()).is_err(), "a pair without its task");
        value["tasks"] = serde_json::json!([{"item": "a", "step": "b", "department": "c", "since": "d"}]);
        assert!(serde_json::from_value::<CaseState>(value).is_err(), "a record without its node");
    }
}
