//! Pure: a case's events, one by one, give the spans that end with each.
//!
//! A [`Tracker`] keeps what is still open in one case (its start, the items and steps under
//! way, pauses, warnings, the commands seen on each task); fed the case's events in order it
//! returns, for each event, the spans that event closes, with their real start and end times.
//! Only names, codes, times and counts of the flow go into a span: never a case fact, a free
//! text (reasons, approvals) or an officer's identity.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::time::SystemTime;

use calendar::Calendar;
use chrono::{DateTime, Utc};
use dsl::compile::State;
use dsl::CompiledFlow;
use engine::case::{step_scope, Level};
use engine::{Event, EventKind};
use opentelemetry::trace::{
    Event as SpanEvent, SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
};
use opentelemetry::{Array, InstrumentationScope, KeyValue, StringValue, Value};
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanLinks};
use petgraph::stable_graph::NodeIndex;
use sha2::{Digest, Sha256};

/// The trace of a case: the same in every process that exports it, from the case id alone.
pub fn trace_id(case: &str) -> TraceId {
    let digest = digest(&["trace", case]);
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    // An all-zero id is invalid; a digest gives one with negligible odds, but never emit it.
    bytes[15] |= u8::from(bytes == [0; 16]);
    TraceId::from_bytes(bytes)
}

/// The case's own span.
pub fn case_span_id(case: &str) -> SpanId {
    span_id(&["case", case])
}

/// An item's span: an item runs at most once in a case.
pub fn item_span_id(case: &str, item: &str) -> SpanId {
    span_id(&["item", case, item])
}

/// A step's span: its `opening`-th opening (a step opens again after a 退回).
pub fn step_span_id(case: &str, item: &str, step: &str, opening: u32) -> SpanId {
    span_id(&["step", case, item, step, &opening.to_string()])
}

fn span_id(parts: &[&str]) -> SpanId {
    let digest = digest(parts);
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    bytes[7] |= u8::from(bytes == [0; 8]);
    SpanId::from_bytes(bytes)
}

fn digest(parts: &[&str]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(b"onetrip");
    for part in parts {
        // A separator that names cannot contain keeps ("a", "bc") apart from ("ab", "c").
        hasher.update([0x1f]);
        hasher.update(part.as_bytes());
    }
    hasher.finalize().into()
}

/// A command or happening shown on a span.
#[derive(Debug, Clone)]
struct Mark {
    name: &'static str,
    at: DateTime<Utc>,
    attributes: Vec<KeyValue>,
}

impl Mark {
    fn new(name: &'static str, label: &'static str, at: DateTime<Utc>) -> Mark {
        Mark { name, at, attributes: vec![KeyValue::new("onetrip.command.label", label)] }
    }

    fn with(mut self, key: &'static str, value: impl Into<Value>) -> Mark {
        self.attributes.push(KeyValue::new(key, value));
        self
    }
}

#[derive(Debug, Clone)]
struct OpenStep {
    item: String,
    step: String,
    department: String,
    opening: u32,
    opened: DateTime<Utc>,
    marks: Vec<Mark>,
}

#[derive(Debug, Clone)]
struct OpenItem {
    started: DateTime<Utc>,
}

#[derive(Debug, Clone)]
struct Pause {
    /// Every clock when empty.
    scopes: Vec<String>,
    since: DateTime<Utc>,
    until: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone)]
struct Warning {
    scope: String,
    level: Level,
    at: DateTime<Utc>,
}

/// What is open in one case, built from its events in order.
#[derive(Debug, Clone)]
pub struct Tracker {
    case: String,
    /// The flow version, from `Submitted`.
    pub version: Option<String>,
    submitted: Option<DateTime<Utc>>,
    ended: bool,
    openings: HashMap<(String, String), u32>,
    steps: BTreeMap<u32, OpenStep>,
    items: BTreeMap<String, OpenItem>,
    pauses: Vec<Pause>,
    warnings: Vec<Warning>,
    marks: Vec<Mark>,
    extended_days: u32,
}

/// Everything a span is made from, besides the tracker.
pub struct Context<'a> {
    pub flow: &'a CompiledFlow,
    pub calendar: &'a Calendar,
    pub scope: &'a InstrumentationScope,
}

impl Tracker {
    pub fn new(case: &str) -> Tracker {
        Tracker {
            case: case.to_string(),
            version: None,
            submitted: None,
            ended: false,
            openings: HashMap::new(),
            steps: BTreeMap::new(),
            items: BTreeMap::new(),
            pauses: Vec::new(),
            warnings: Vec::new(),
            marks: Vec::new(),
            extended_days: 0,
        }
    }

    /// Whether the case span has been closed: nothing more will come of this case.
    pub fn ended(&self) -> bool {
        self.ended
    }

    /// Takes in the next event of the case; returns the spans it closes.
    pub fn apply(&mut self, cx: &Context, event: &Event) -> Vec<SpanData> {
        let at = parse_at(&event.at);
        let mut out = Vec::new();
        if self.ended {
            // A rating after 办结, or anything else: the case's spans are out already.
            return out;
        }
        match &event.kind {
            EventKind::Submitted { version, .. } => {
                self.version = Some(version.clone());
                self.submitted = Some(at);
            }
            EventKind::TaskOpened { node, item, step, department, .. } => {
                let opening = self.openings.entry((item.clone(), step.clone())).or_default();
                *opening += 1;
                let opening = *opening;
                self.steps.insert(
                    *node,
                    OpenStep {
                        item: item.clone(),
                        step: step.clone(),
                        department: department.clone(),
                        opening,
                        opened: at,
                        marks: Vec::new(),
                    },
                );
                self.items.entry(item.clone()).or_insert(OpenItem { started: at });
            }
            EventKind::Transferred { node, .. } => self.mark(*node, Mark::new("transfer", "转办", at)),
            EventKind::CoSigned { node, department } => {
                self.mark(*node, Mark::new("co_sign", "加签", at).with("onetrip.department", department.clone()))
            }
            EventKind::SupplementRequested { node, materials } => self.mark(
                *node,
                Mark::new("request_supplement", "补正", at).with("onetrip.materials.count", materials.len() as i64),
            ),
            EventKind::SupplementReceived { node } => {
                self.mark(*node, Mark::new("supplement_received", "补正材料已收到", at))
            }
            EventKind::ClockPaused { scopes, .. } => {
                self.pauses.push(Pause { scopes: scopes.clone(), since: at, until: None })
            }
            EventKind::ClockResumed { .. } => {
                if let Some(pause) = self.pauses.iter_mut().rev().find(|p| p.until.is_none()) {
                    pause.until = Some(at);
                }
            }
            EventKind::SpecialProcedureStarted { kind, .. } => {
                self.marks.push(Mark::new("special_procedure", "特别程序", at).with("onetrip.procedure", kind.clone()))
            }
            EventKind::SpecialProcedureEnded => {
                self.marks.push(Mark::new("special_procedure_ended", "特别程序结束", at))
            }
            EventKind::Extended { days, due, .. } => {
                self.extended_days += days;
                self.marks.push(
                    Mark::new("extend", "延长", at)
                        .with("onetrip.workdays.extended", i64::from(*days))
                        .with("onetrip.due", due.clone()),
                );
            }
            EventKind::ToleratedMaterialsReceived => {
                self.marks.push(Mark::new("tolerated_received", "容缺材料已补齐", at))
            }
            EventKind::WarningRaised { scope, level } => {
                self.warnings.push(Warning { scope: scope.clone(), level: *level, at })
            }
            EventKind::Tolerated { node, materials, due, finishes_item } => {
                self.mark(
                    *node,
                    Mark::new("tolerate", "容缺", at)
                        .with("onetrip.materials.count", materials.len() as i64)
                        .with("onetrip.due", due.clone()),
                );
                let item = self.steps.get(node).map(|s| s.item.clone());
                out.extend(self.end_step(cx, *node, at, "tolerated"));
                if let (Some(item), true) = (item, finishes_item) {
                    out.extend(self.end_item(cx, &item, at, "completed"));
                }
            }
            EventKind::TaskCompleted { node, finishes_item, .. } => {
                let item = self.steps.get(node).map(|s| s.item.clone());
                out.extend(self.end_step(cx, *node, at, "completed"));
                if let (Some(item), true) = (item, finishes_item) {
                    out.extend(self.end_item(cx, &item, at, "completed"));
                }
            }
            EventKind::Returned { node, to } => {
                let mut mark = Mark::new("return", "退回", at);
                if let Some(State::Step { step, .. }) = cx.flow.graph.node_weight(NodeIndex::new(*to as usize)) {
                    mark = mark.with("onetrip.step.to", step.clone());
                }
                self.mark(*node, mark);
                out.extend(self.end_step(cx, *node, at, "returned"));
            }
            EventKind::Rejected { node, .. } => {
                self.mark(*node, Mark::new("reject", "不予许可", at));
                out.extend(self.end_step(cx, *node, at, "rejected"));
                out.extend(self.end_case(cx, at, "rejected"));
            }
            EventKind::Withdrawn => out.extend(self.end_case(cx, at, "withdrawn")),
            EventKind::Terminated { .. } => out.extend(self.end_case(cx, at, "terminated")),
            EventKind::Completed => out.extend(self.end_case(cx, at, "completed")),
            EventKind::JoinArrived { .. }
            | EventKind::Joined { .. }
            | EventKind::BranchTaken { .. }
            | EventKind::DeadlineSet { .. }
            | EventKind::Rated { .. } => {}
        }
        out
    }

    fn mark(&mut self, node: u32, mark: Mark) {
        if let Some(step) = self.steps.get_mut(&node) {
            step.marks.push(mark);
        }
    }

    fn end_step(&mut self, cx: &Context, node: u32, at: DateTime<Utc>, outcome: &'static str) -> Option<SpanData> {
        let step = self.steps.remove(&node)?;
        let item = cx.flow.items.iter().find(|i| i.name == step.item);
        let mut attributes = self.common(cx);
        attributes.extend(item_attributes(cx, &step.item));
        attributes.push(KeyValue::new("onetrip.department", step.department.clone()));
        if let Some(d) = cx.flow.departments.iter().find(|d| d.name == step.department) {
            attributes.push(KeyValue::new("onetrip.department.name", d.title.clone()));
        }
        attributes.push(KeyValue::new("onetrip.step", step.step.clone()));
        if let Some(label) = item.and_then(|i| i.step(&step.step)).and_then(|s| s.label.clone()) {
            attributes.push(KeyValue::new("onetrip.step.name", label));
        }
        attributes.push(KeyValue::new("onetrip.step.opening", i64::from(step.opening)));
        let limit = match cx.flow.graph.node_weight(NodeIndex::new(node as usize)) {
            Some(State::Step { limit, .. }) => *limit,
            _ => None,
        };
        // The applicant's time stops the item's clock: it is the step's paused time too.
        let spec = Spec {
            name: format!("{} {}", item.map_or(step.item.as_str(), |i| i.title.as_str()), step.step),
            span: step_span_id(&self.case, &step.item, &step.step, step.opening),
            parent: item_span_id(&self.case, &step.item),
            start: step.opened,
            end: at,
            outcome,
            promised: limit,
            clock: step.item.clone(),
            warning_scope: step_scope(&step.item, &step.step),
            marks: step.marks,
            attributes,
        };
        Some(self.span(cx, spec))
    }

    fn end_item(&mut self, cx: &Context, name: &str, at: DateTime<Utc>, outcome: &'static str) -> Option<SpanData> {
        let open = self.items.remove(name)?;
        let item = cx.flow.items.iter().find(|i| i.name == name);
        let mut attributes = self.common(cx);
        attributes.extend(item_attributes(cx, name));
        if let Some(item) = item {
            attributes.push(KeyValue::new("onetrip.department", item.department.clone()));
            if let Some(d) = cx.flow.departments.iter().find(|d| d.name == item.department) {
                attributes.push(KeyValue::new("onetrip.department.name", d.title.clone()));
            }
        }
        let spec = Spec {
            name: item.map_or(name, |i| i.title.as_str()).to_string(),
            span: item_span_id(&self.case, name),
            parent: case_span_id(&self.case),
            start: open.started,
            end: at,
            outcome,
            promised: item.map(|i| i.promised_days()),
            clock: name.to_string(),
            warning_scope: name.to_string(),
            marks: Vec::new(),
            attributes,
        };
        Some(self.span(cx, spec))
    }

    /// The case ends: every step and item still open ends with it, then the case span.
    fn end_case(&mut self, cx: &Context, at: DateTime<Utc>, outcome: &'static str) -> Vec<SpanData> {
        let mut out = Vec::new();
        let nodes: Vec<u32> = self.steps.keys().copied().collect();
        for node in nodes {
            out.extend(self.end_step(cx, node, at, if outcome == "completed" { outcome } else { "cancelled" }));
        }
        let items: Vec<String> = self.items.keys().cloned().collect();
        for item in items {
            out.extend(self.end_item(cx, &item, at, outcome));
        }
        self.ended = true;
        let Some(start) = self.submitted else { return out };
        let process = &cx.flow.process;
        let mut attributes = self.common(cx);
        attributes.push(KeyValue::new("onetrip.process.name", process.title.clone()));
        if let Some(code) = &process.code {
            attributes.push(KeyValue::new("onetrip.process.code", code.clone()));
        }
        attributes.push(KeyValue::new("onetrip.department", process.window.clone()));
        if let Some(d) = cx.flow.departments.iter().find(|d| d.name == process.window) {
            attributes.push(KeyValue::new("onetrip.department.name", d.title.clone()));
        }
        if self.extended_days > 0 {
            attributes.push(KeyValue::new("onetrip.workdays.extended", i64::from(self.extended_days)));
        }
        let spec = Spec {
            name: cx.flow.title.clone(),
            span: case_span_id(&self.case),
            parent: SpanId::INVALID,
            start,
            end: at,
            outcome,
            promised: process.sla,
            clock: "process".to_string(),
            warning_scope: "process".to_string(),
            marks: std::mem::take(&mut self.marks),
            attributes,
        };
        out.push(self.span(cx, spec));
        out
    }

    fn common(&self, cx: &Context) -> Vec<KeyValue> {
        vec![
            KeyValue::new("onetrip.case.id", self.case.clone()),
            KeyValue::new("onetrip.process", cx.flow.name.clone()),
        ]
    }

    fn span(&self, cx: &Context, spec: Spec) -> SpanData {
        let Spec { name, span, parent, start, end, outcome, promised, clock, warning_scope, mut marks, mut attributes } =
            spec;
        attributes.push(KeyValue::new("onetrip.outcome", outcome.to_string()));
        let paused: i64 = self
            .pauses
            .iter()
            .filter(|p| p.scopes.is_empty() || p.scopes.contains(&clock))
            .filter_map(|p| {
                let (from, to) = (p.since.max(start), p.until.unwrap_or(end).min(end));
                (from < to).then(|| workdays(cx.calendar, from, to)).flatten()
            })
            .sum();
        if let Some(elapsed) = workdays(cx.calendar, start, end) {
            attributes.push(KeyValue::new("onetrip.workdays.used", (elapsed - paused).max(0)));
        }
        if let Some(promised) = promised {
            attributes.push(KeyValue::new("onetrip.workdays.promised", i64::from(promised)));
        }
        attributes.push(KeyValue::new("onetrip.workdays.paused", paused));
        let warnings: Vec<&Warning> =
            self.warnings.iter().filter(|w| w.scope == warning_scope && w.at >= start && w.at <= end).collect();
        let levels: Vec<StringValue> = warnings.iter().map(|w| StringValue::from(level(w.level))).collect();
        let red = warnings.iter().any(|w| w.level == Level::Red);
        attributes.push(KeyValue::new("onetrip.warnings", Value::Array(Array::String(levels))));
        for warning in &warnings {
            let label = if warning.level == Level::Red { "红牌" } else { "黄牌" };
            marks.push(Mark::new("warning", label, warning.at).with("onetrip.warning.level", level(warning.level)));
        }
        marks.sort_by_key(|m| m.at);
        let mut events = SpanEvents::default();
        events.events = marks.into_iter().map(|m| SpanEvent::new(m.name, system_time(m.at), m.attributes, 0)).collect();
        SpanData {
            span_context: SpanContext::new(
                trace_id(&self.case),
                span,
                TraceFlags::SAMPLED,
                false,
                TraceState::default(),
            ),
            parent_span_id: parent,
            parent_span_is_remote: false,
            span_kind: SpanKind::Internal,
            name: Cow::Owned(name),
            start_time: system_time(start),
            end_time: system_time(end),
            attributes,
            dropped_attributes_count: 0,
            events,
            links: SpanLinks::default(),
            // Overdue is what a supervisor looks for: such a span is marked as an error.
            status: if red { Status::error("overdue") } else { Status::Unset },
            instrumentation_scope: cx.scope.clone(),
        }
    }
}

struct Spec {
    name: String,
    span: SpanId,
    parent: SpanId,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    outcome: &'static str,
    promised: Option<u32>,
    /// The clock whose pauses count as paused time: `process` or an item.
    clock: String,
    /// The scope of the warnings shown: `process`, an item, or `item/step`.
    warning_scope: String,
    marks: Vec<Mark>,
    attributes: Vec<KeyValue>,
}

fn item_attributes(cx: &Context, name: &str) -> Vec<KeyValue> {
    let mut attributes = vec![KeyValue::new("onetrip.item", name.to_string())];
    if let Some(item) = cx.flow.items.iter().find(|i| i.name == name) {
        attributes.push(KeyValue::new("onetrip.item.name", item.title.clone()));
        if let Some(code) = &item.code {
            attributes.push(KeyValue::new("onetrip.item.code", code.clone()));
        }
    }
    attributes
}

fn level(level: Level) -> &'static str {
    match level {
        Level::Yellow => "yellow",
        Level::Red => "red",
    }
}

/// The engine writes RFC 3339; anything else (never seen) counts as the epoch rather than
/// stopping the exporter.
fn parse_at(at: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(at).map(|t| t.with_timezone(&Utc)).unwrap_or_default()
}

fn system_time(at: DateTime<Utc>) -> SystemTime {
    SystemTime::from(at)
}

/// Working days after `from`'s day up to `to`'s, in Beijing days; `None` where the calendar
/// has no schedule for the year.
fn workdays(calendar: &Calendar, from: DateTime<Utc>, to: DateTime<Utc>) -> Option<i64> {
    let day = |t: DateTime<Utc>| (t + chrono::Duration::hours(8)).date_naive();
    calendar.workdays_between(day(from), day(to)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ids are part of the data: a change here splits the traces of cases that span a
    /// deployment, so they are pinned.
    #[test]
    fn ids_are_stable_digests_of_the_case() {
        let case = "C20260930010000-0123456789ab";
        assert_eq!(format!("{}", trace_id(case)), "793c738b38f396263b967b755e273c10");
        assert_eq!(format!("{}", case_span_id(case)), "55b00adf3e052944");
        assert_eq!(format!("{}", item_span_id(case, "seal")), "8be10f8201612ea3");
        assert_eq!(format!("{}", step_span_id(case, "seal", "accept", 2)), "2c8c7d29b2c3096c");
        assert_ne!(step_span_id(case, "seal", "accept", 1), step_span_id(case, "seal", "accept", 2));
        assert_ne!(item_span_id(case, "ab"), step_span_id(case, "a", "b", 0));
        assert_ne!(trace_id(case), trace_id("C20260930010000-0123456789ac"));
    }
}
