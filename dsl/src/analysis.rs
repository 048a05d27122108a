//! Analyses over a checked process: what is guaranteed to have run before each item, the
//! critical path of promised limits, the trips, and the reform figures (改革成效) a reform
//! office publishes ("7 steps / 5 departments / 22 days → 3 steps / 5 days, 1 trip").

use std::collections::{BTreeSet, HashMap, HashSet};

use serde::Serialize;

use crate::model::{Flow, Item, MaterialSource, Process, Program};

/// For each item of a flow, the items guaranteed to have finished before it starts: those on
/// every path to it, and never those in a parallel sibling branch.
pub fn guaranteed_before(flow: &Flow) -> HashMap<&str, HashSet<&str>> {
    let mut out = HashMap::new();
    walk_guarantees(flow, HashSet::new(), &mut out);
    out
}

/// Walks `flow` given the items done before it; returns the items done after it.
fn walk_guarantees<'a>(
    flow: &'a Flow,
    done: HashSet<&'a str>,
    out: &mut HashMap<&'a str, HashSet<&'a str>>,
) -> HashSet<&'a str> {
    match flow {
        Flow::Item(name) => {
            let mut after = done.clone();
            out.insert(name.as_str(), done);
            after.insert(name.as_str());
            after
        }
        Flow::End => done,
        Flow::Sequence(nodes) => nodes.iter().fold(done, |done, node| walk_guarantees(node, done, out)),
        Flow::Parallel(branches) => {
            let mut after = done.clone();
            for branch in branches {
                after.extend(walk_guarantees(branch, done.clone(), out));
            }
            after
        }
        Flow::Choice { branches, otherwise } => {
            // Only what every alternative does is guaranteed; with no `else`, doing nothing
            // is an alternative too.
            let mut alternatives: Vec<HashSet<&str>> =
                branches.iter().map(|(_, branch)| walk_guarantees(branch, done.clone(), out)).collect();
            match otherwise {
                Some(branch) => alternatives.push(walk_guarantees(branch, done.clone(), out)),
                None => alternatives.push(done.clone()),
            }
            let mut iter = alternatives.into_iter();
            let first = iter.next().unwrap_or_default();
            iter.fold(first, |acc, set| acc.intersection(&set).copied().collect())
        }
    }
}

/// The longest chain of promised limits through a flow.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CriticalPath {
    pub days: u32,
    /// The items on the path with their promised working days, in order.
    pub items: Vec<(String, u32)>,
}

/// The critical path: sequences add up, parallel branches and alternatives take the longest.
pub fn critical_path(program: &Program, flow: &Flow) -> CriticalPath {
    longest(flow, &|name| program.item(name).map_or(0, Item::promised_days))
}

/// On-site visits on the worst path through a flow.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Trips {
    pub trips: u32,
    pub items: Vec<(String, u32)>,
}

/// The trips an applicant may have to make: every item's on-site visits, added along a path
/// and across parallel branches (all of them run), the worst alternative of a choice.
pub fn trips(program: &Program, flow: &Flow) -> Trips {
    let path = sum_visits(flow, &|name| program.item(name).map_or(0, |i| i.visits));
    Trips { trips: path.days, items: path.items.into_iter().filter(|(_, n)| *n > 0).collect() }
}

fn longest(flow: &Flow, weight: &dyn Fn(&str) -> u32) -> CriticalPath {
    match flow {
        Flow::Item(name) => CriticalPath { days: weight(name), items: vec![(name.clone(), weight(name))] },
        Flow::End => CriticalPath::default(),
        Flow::Sequence(nodes) => {
            nodes.iter().map(|n| longest(n, weight)).fold(CriticalPath::default(), |mut acc, p| {
                acc.days = acc.days.saturating_add(p.days);
                acc.items.extend(p.items);
                acc
            })
        }
        Flow::Parallel(branches) => max_path(branches.iter().map(|b| longest(b, weight))),
        Flow::Choice { branches, otherwise } => max_path(
            branches.iter().map(|(_, b)| longest(b, weight)).chain(otherwise.iter().map(|b| longest(b, weight))),
        ),
    }
}

fn sum_visits(flow: &Flow, weight: &dyn Fn(&str) -> u32) -> CriticalPath {
    match flow {
        Flow::Item(name) => CriticalPath { days: weight(name), items: vec![(name.clone(), weight(name))] },
        Flow::End => CriticalPath::default(),
        Flow::Sequence(nodes) | Flow::Parallel(nodes) => {
            nodes.iter().map(|n| sum_visits(n, weight)).fold(CriticalPath::default(), |mut acc, p| {
                acc.days = acc.days.saturating_add(p.days);
                acc.items.extend(p.items);
                acc
            })
        }
        Flow::Choice { branches, otherwise } => max_path(
            branches.iter().map(|(_, b)| sum_visits(b, weight)).chain(otherwise.iter().map(|b| sum_visits(b, weight))),
        ),
    }
}

/// The longest of several paths; the first one wins a tie, so the result is stable.
fn max_path(paths: impl Iterator<Item = CriticalPath>) -> CriticalPath {
    paths
        .fold(None, |best: Option<CriticalPath>, p| match best {
            Some(b) if b.days >= p.days => Some(b),
            _ => Some(p),
        })
        .unwrap_or_default()
}

/// The reform figures of one process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    pub process: String,
    pub title: String,
    pub items: usize,
    pub departments: Vec<String>,
    /// Steps (环节) of all items together.
    pub steps: usize,
    /// Materials listed by all items together.
    pub materials_total: usize,
    /// Materials the applicant is asked for once: duplicates removed, and those served by
    /// shared data or by a licence produced earlier in the process left out.
    pub materials_asked: usize,
    pub materials_from_shared_data: usize,
    pub materials_from_licences: usize,
    /// The consolidated list: name and title of each material asked.
    pub asked: Vec<(String, String)>,
    /// Working days if the items were applied for one after another (promised limits added).
    pub days_separately: u32,
    /// Legal limits of all items added (the time the law allows for doing them one by one),
    /// when every item declares one.
    pub legal_days_separately: Option<u32>,
    /// Promised working days on the critical path of the joint process.
    pub days: u32,
    pub critical_path: Vec<(String, u32)>,
    pub sla: Option<u32>,
    /// On-site visits if the items were applied for one by one.
    pub trips_separately: u32,
    /// Trips on the worst path of the joint process.
    pub trips: u32,
    pub trips_bound: Option<u32>,
}

pub fn report(program: &Program, process: &Process) -> Report {
    let names = process.flow.items();
    let items: Vec<&Item> = names.iter().filter_map(|n| program.item(n)).collect();
    let mut departments: BTreeSet<String> = BTreeSet::new();
    if !process.window.is_empty() {
        departments.insert(process.window.clone());
    }
    for item in &items {
        departments.insert(item.department.clone());
        for step in &item.steps {
            departments.insert(step.department.clone());
            departments.extend(step.cosign.iter().cloned());
        }
    }
    departments.remove("");
    let before = guaranteed_before(&process.flow);
    let mut asked: Vec<(String, String)> = Vec::new();
    let mut seen: HashSet<&str> = HashSet::new();
    let (mut shared, mut licences, mut total) = (0, 0, 0);
    for item in &items {
        for material in &item.materials {
            total += 1;
            match &material.source {
                MaterialSource::Shared { .. } => shared += 1,
                MaterialSource::Licence { item: producer, .. }
                    if before
                        .get(item.name.as_str())
                        .is_some_and(|set| set.iter().any(|done| program.is_or_extends(done, producer))) =>
                {
                    licences += 1
                }
                _ => {
                    if seen.insert(material.name.as_str()) {
                        asked.push((material.name.clone(), material.title.clone()));
                    }
                }
            }
        }
    }
    let path = critical_path(program, &process.flow);
    Report {
        process: process.name.clone(),
        title: process.title.clone(),
        items: items.len(),
        departments: departments.into_iter().collect(),
        steps: items.iter().map(|i| i.steps.len()).sum(),
        materials_total: total,
        materials_asked: asked.len(),
        materials_from_shared_data: shared,
        materials_from_licences: licences,
        asked,
        days_separately: items.iter().map(|i| i.promised_days()).sum(),
        legal_days_separately: items.iter().map(|i| i.legal_limit).sum(),
        days: path.days,
        critical_path: path.items,
        sla: process.sla,
        trips_separately: items.iter().map(|i| i.visits).sum(),
        trips: trips(program, &process.flow).trips,
        trips_bound: process.visits_at_most,
    }
}

/// W0004, for `onetrip check --guide`: each item and process whose published guide would lack
/// 办理地点 (`where`), 咨询方式 (`contact`) or 监督投诉方式 (`complaint`). A separate pass, so
/// that files written before these fields existed stay clean under a plain check.
pub fn guide_lint(program: &Program) -> Vec<crate::diagnostic::Diagnostic> {
    use crate::diagnostic::{Code, Diagnostic};
    let declarations = program
        .items
        .iter()
        .map(|i| ("item", &i.name, &i.guide, i.location))
        .chain(program.processes.iter().map(|p| ("process", &p.name, &p.guide, p.location)));
    let mut out = Vec::new();
    for (kind, name, guide, location) in declarations {
        let missing: Vec<&str> = [
            ("`where` (办理地点)", guide.place.is_none()),
            ("`contact` (咨询方式)", guide.contact.is_none()),
            ("`complaint` (监督投诉方式)", guide.complaint.is_none()),
        ]
        .into_iter()
        .filter(|(_, absent)| *absent)
        .map(|(field, _)| field)
        .collect();
        if missing.is_empty() {
            continue;
        }
        out.push(
            Diagnostic::new(
                Code::GuideIncomplete,
                location.file,
                location.span,
                format!("the guide of {kind} `{name}` gives no {}", missing.join(", ")),
            )
            .label("its published guide would be incomplete")
            .help("e.g. `where \"市民中心二楼综合窗口\"`, `contact \"0571-12345\"`, `complaint \"12345 政务服务便民热线\"`"),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(name: &str) -> Flow {
        Flow::Item(name.into())
    }

    #[test]
    fn parallel_siblings_are_not_guaranteed_but_joined_branches_are() {
        let flow = Flow::Sequence(vec![
            item("a"),
            Flow::Parallel(vec![item("b"), Flow::Sequence(vec![item("c"), item("d")])]),
            item("e"),
        ]);
        let before = guaranteed_before(&flow);
        assert_eq!(before["b"], HashSet::from(["a"]));
        assert_eq!(before["d"], HashSet::from(["a", "c"]));
        assert_eq!(before["e"], HashSet::from(["a", "b", "c", "d"]));
    }

    #[test]
    fn a_choice_guarantees_only_what_every_branch_does() {
        let rule = crate::model::Rule { source: "true".into(), message: None, location: Default::default() };
        let flow = Flow::Sequence(vec![
            Flow::Choice {
                branches: vec![(rule.clone(), Flow::Sequence(vec![item("a"), item("b")]))],
                otherwise: Some(Box::new(item("a"))),
            },
            item("c"),
            Flow::Choice { branches: vec![(rule, item("d"))], otherwise: None },
            item("e"),
        ]);
        let before = guaranteed_before(&flow);
        assert_eq!(before["c"], HashSet::from(["a"]));
        assert_eq!(before["e"], HashSet::from(["a", "c"]));
    }
}
