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

use dsl::compile::{CompiledFlow, Event as Trigger, State, Transition};
use petgraph::stable_graph::NodeIndex;
use petgraph::visit::EdgeRef;
use petgraph::Direction;
use serde::{Deserialize, Serialize};

/// Where a case stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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
}

impl Status {
    pub fn is_final(self) -> bool {
        matches!(self, Status::Completed | Status::Rejected | Status::Withdrawn)
    }
}

/// A task: a step of an item waiting for its department.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Task {
    pub item: String,
    pub step: String,
    pub department: String,
    /// When the task was opened (RFC 3339).
    pub since: String,
}

/// What happened to a case. Numbered per case by the store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    },
    TaskCompleted {
        node: u32,
        department: String,
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
}

/// An event with the time it happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub at: String,
    #[serde(flatten)]
    pub kind: EventKind,
}

/// The projection of a case's events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseState {
    pub id: String,
    pub flow: String,
    pub version_id: String,
    pub status: Status,
    /// Events applied so far: the case's version for optimistic concurrency.
    pub version: u64,
    /// Open tasks by state node.
    #[serde(with = "entries")]
    pub tasks: BTreeMap<u32, Task>,
    /// Arrivals so far at each parallel join.
    #[serde(with = "entries")]
    pub joins: BTreeMap<u32, u32>,
    /// The task a supplement request (补正) holds, and the materials asked for.
    pub supplement: Option<(u32, Vec<String>)>,
    pub rating: Option<u8>,
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
            EventKind::TaskOpened { node, item, step, department } => {
                self.tasks.insert(
                    *node,
                    Task {
                        item: item.clone(),
                        step: step.clone(),
                        department: department.clone(),
                        since: event.at.clone(),
                    },
                );
            }
            EventKind::TaskCompleted { node, .. } => {
                self.tasks.remove(node);
            }
            EventKind::Returned { node, .. } => {
                self.tasks.remove(node);
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
        }
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

/// What an officer or the applicant asks of a case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
}

/// Who acts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "role", content = "department")]
pub enum Actor {
    Officer(String),
    Applicant,
    Supervisor,
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
}

/// Evaluates a guard; the engine supplies it with the case's facts bound.
pub trait Guards {
    fn holds(&self, guard: &str) -> Result<bool, String>;
}

/// The events that start a case: submission, then tokens from the start state onwards.
pub fn start(
    flow: &CompiledFlow,
    state: &CaseState,
    at: &str,
    guards: &dyn Guards,
) -> Result<Vec<Event>, CommandError> {
    let mut run = Run { flow, state: state.clone(), events: Vec::new(), at, guards };
    run.emit(EventKind::Submitted { flow: flow.name.clone(), version: flow.version.clone() });
    run.leave(flow.start, |_| true)?;
    Ok(run.events)
}

/// The events a command produces, or why it is not allowed.
pub fn decide(
    flow: &CompiledFlow,
    state: &CaseState,
    command: &Command,
    actor: &Actor,
    at: &str,
    guards: &dyn Guards,
) -> Result<Vec<Event>, CommandError> {
    if state.status.is_final() && !matches!(command, Command::Rate { .. }) {
        return Err(CommandError::Closed(state.status));
    }
    let mut run = Run { flow, state: state.clone(), events: Vec::new(), at, guards };
    match command {
        Command::Complete { item, step, next } => {
            if state.status == Status::AwaitingSupplement {
                return Err(CommandError::AwaitingSupplement);
            }
            let node = run.task(item, step, actor)?;
            let forward: Vec<(NodeIndex, Option<String>)> = flow
                .graph
                .edges_directed(node, Direction::Outgoing)
                .filter(|e| e.weight().event == Trigger::Complete)
                .map(|e| (e.target(), step_name(flow, e.target())))
                .collect();
            let chosen = match (forward.as_slice(), next) {
                ([only], None) => only.0,
                (_, Some(next)) => forward
                    .iter()
                    .find(|(_, name)| name.as_deref() == Some(next.as_str()))
                    .map(|(n, _)| *n)
                    .ok_or_else(|| CommandError::NoSuchNext { step: step.clone(), next: next.clone() })?,
                _ => {
                    let options: Vec<String> =
                        forward.iter().map(|(_, n)| format!("`{}`", n.as_deref().unwrap_or("the next item"))).collect();
                    return Err(CommandError::ChooseNext { step: step.clone(), options: options.join(" or ") });
                }
            };
            let department = state.tasks[&(node.index() as u32)].department.clone();
            run.emit(EventKind::TaskCompleted { node: node.index() as u32, department });
            run.arrive(chosen)?;
        }
        Command::Return { item, step, to } => {
            if state.status == Status::AwaitingSupplement {
                return Err(CommandError::AwaitingSupplement);
            }
            let node = run.task(item, step, actor)?;
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
        }
        Command::SupplementReceived => {
            let Some((node, _)) = &state.supplement else { return Err(CommandError::NoSupplementRequested) };
            if let Actor::Officer(department) = actor {
                let owner = &state.tasks.get(node).map(|t| t.department.clone()).unwrap_or_default();
                if owner != department {
                    return Err(CommandError::NotYourTask { owner: owner.clone(), actor: department.clone() });
                }
            }
            run.emit(EventKind::SupplementReceived { node: *node });
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
    at: &'a str,
    guards: &'a dyn Guards,
}

impl Run<'_> {
    fn emit(&mut self, kind: EventKind) {
        let event = Event { at: self.at.to_string(), kind };
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
        match actor {
            Actor::Officer(department) if *department != task.department => {
                Err(CommandError::NotYourTask { owner: task.department.clone(), actor: department.clone() })
            }
            Actor::Applicant => Err(CommandError::Forbidden("an officer of the department")),
            _ => Ok(NodeIndex::new(*node as usize)),
        }
    }

    /// Follows the outgoing transitions of `node` that `take` accepts.
    fn leave(&mut self, node: NodeIndex, take: impl Fn(&Transition) -> bool) -> Result<(), CommandError> {
        let targets: Vec<NodeIndex> = self
            .flow
            .graph
            .edges_directed(node, Direction::Outgoing)
            .filter(|e| take(e.weight()))
            .map(|e| e.target())
            .collect();
        for target in targets {
            self.arrive(target)?;
        }
        Ok(())
    }

    /// A token arrives at `node`: open a task, or pass through a structural state.
    fn arrive(&mut self, node: NodeIndex) -> Result<(), CommandError> {
        let Some(state) = self.flow.graph.node_weight(node) else { return Ok(()) };
        match state {
            State::Step { item, step, department, .. } => self.emit(EventKind::TaskOpened {
                node: node.index() as u32,
                item: item.clone(),
                step: step.clone(),
                department: department.clone(),
            }),
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
