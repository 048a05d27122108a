//! 一次告知 (tell everything once): for one applicant, from their own facts, the items their
//! case will run (each branch's guard evaluated as the engine does at submission), whether they
//! are eligible (and if not, the messages of the rules they fail), and the one list of what to
//! bring — conditional materials decided on their facts, duplicates across items merged, and
//! what shared data or a licence supplies left out.
//!
//! The facts are checked against the flow's schemas; an error names the field, never a value.
//! Nothing of the facts is copied into the notice.

use std::sync::Arc;

use calendar::Calendar;
use dsl::model::{Flow, MaterialSource, Program};
use rules::{Facts, RuleKey, RuleSet};
use serde::Serialize;

use crate::{material_line, named_department, process_guide, MaterialLine, Named};

#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Notice {
    pub name: String,
    pub title: String,
    /// Whether the applicant meets every eligibility rule of what their case runs.
    pub eligible: bool,
    /// The messages of the rules they fail (the rule itself where it has none).
    pub refusals: Vec<String>,
    /// The items their case will run, in the order the flow names them.
    pub items: Vec<Named>,
    pub departments: Vec<Named>,
    /// What to bring, once each.
    pub bring: Vec<MaterialLine>,
    /// Materials of those items that shared data or a licence supplies (each counted once):
    /// not to bring.
    pub spared: usize,
    /// Promised working days (the process's limit, or the item's).
    pub days: u32,
    /// On-site visits at most.
    pub trips: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoticeError {
    #[error("no process or item `{0}`")]
    Unknown(String),
    #[error("the facts do not match the flow's schemas: {0}")]
    Facts(String),
    #[error("a rule of the flow cannot be evaluated: {0}")]
    Rule(String),
}

/// The notice of `name` (a process or an item of `program`) for an applicant: their `facts`
/// are what a submission gives (the value of each schema by name, the materials and licences
/// they hold) and the day (`today`, which rules may read).
pub fn notice(program: &Program, name: &str, facts: &Facts, calendar: Arc<Calendar>) -> Result<Notice, NoticeError> {
    let unknown = || NoticeError::Unknown(name.to_string());
    let flow = dsl::compile(program, name).ok_or_else(unknown)?;
    // A process's guide says which materials its earlier licences supply (the items' own
    // guides are not needed here).
    let process = program.process(name).map(|p| process_guide(program, p));
    let set = RuleSet::new(&flow, calendar).map_err(|e| NoticeError::Rule(e.to_string()))?;
    let bound = set.bind(facts).map_err(|e| NoticeError::Facts(e.to_string()))?;

    // The items the case runs: the branches whose guards hold.
    let holds = |source: &str| -> Result<bool, NoticeError> {
        let id = set.guard(source).ok_or_else(|| NoticeError::Rule(format!("unknown guard `{source}`")))?;
        bound.evaluate(id).map_err(|e| NoticeError::Rule(format!("`{source}`: {e}")))
    };
    let mut run = Vec::new();
    reached(&flow.process.flow, &holds, &mut run)?;
    let mut run_names: Vec<&str> = Vec::new();
    for item in run {
        if !run_names.contains(&item) {
            run_names.push(item);
        }
    }

    let mut refusals = Vec::new();
    let keys = std::iter::once(RuleKey::ProcessEligibility)
        .chain(run_names.iter().map(|i| RuleKey::ItemEligibility(i.to_string())));
    for key in keys {
        let Some(id) = set.id(&key) else { continue };
        let explanation = bound.explain(id).map_err(|e| NoticeError::Rule(e.to_string()))?;
        if !explanation.holds {
            refusals.push(explanation.message.unwrap_or(explanation.source));
        }
    }

    // What to bring: each material of the items run that applies to these facts, asked of
    // the applicant (not shared data, not a licence issued before it in this process).
    let asked_in_process: Option<Vec<&str>> =
        process.as_ref().map(|p| p.materials.iter().filter(|m| !m.exempt).map(|m| m.name.as_str()).collect());
    let mut bring: Vec<MaterialLine> = Vec::new();
    let mut spared: Vec<&str> = Vec::new();
    let mut departments: Vec<Named> = Vec::new();
    let mut items = Vec::new();
    for name in &run_names {
        let Some(item) = program.item(name) else { continue };
        if !departments.iter().any(|d| d.name == item.department) {
            departments.push(named_department(program, &item.department));
        }
        items.push(Named { name: item.name.clone(), title: item.title.clone() });
        for material in &item.materials {
            let key = RuleKey::MaterialCondition { item: item.name.clone(), material: material.name.clone() };
            let applies = match (material.condition.as_ref(), set.id(&key)) {
                (Some(_), Some(id)) => bound.evaluate(id).map_err(|e| NoticeError::Rule(e.to_string()))?,
                _ => true,
            };
            if !applies {
                continue;
            }
            let supplied = match &material.source {
                MaterialSource::Applicant => false,
                MaterialSource::Shared { .. } => true,
                // Held already, issued earlier in this process, or (for a lone item) an
                // e-licence the department fetches.
                MaterialSource::Licence { licence, .. } => {
                    facts.licences.contains(licence)
                        || asked_in_process.as_ref().is_none_or(|asked| !asked.contains(&material.name.as_str()))
                }
            };
            if supplied {
                if !spared.contains(&material.name.as_str()) {
                    spared.push(&material.name);
                }
                continue;
            }
            match bring.iter_mut().find(|m| m.name == material.name) {
                Some(merged) => merged.items.push(item.name.clone()),
                None => {
                    let mut line = material_line(program, item, material);
                    // Decided on these facts: the condition is no longer a question.
                    line.when = None;
                    bring.push(line);
                }
            }
        }
    }
    let (days, trips) = match &process {
        Some(process) => (process.sla.unwrap_or(process.savings.days), process.savings.trips),
        None => program.item(name).map_or((0, 0), |i| (i.promised_days(), i.visits)),
    };
    Ok(Notice {
        name: flow.name.clone(),
        title: flow.title.clone(),
        eligible: refusals.is_empty(),
        refusals,
        items,
        departments,
        bring,
        spared: spared.len(),
        days,
        trips,
    })
}

/// The items a flow reaches for facts on which `holds` decides each guard.
fn reached<'f>(
    flow: &'f Flow,
    holds: &dyn Fn(&str) -> Result<bool, NoticeError>,
    out: &mut Vec<&'f str>,
) -> Result<bool, NoticeError> {
    // Returns whether the flow goes on after this part (an `end` stops it).
    match flow {
        Flow::Item(name) => out.push(name),
        Flow::End => return Ok(false),
        Flow::Sequence(nodes) => {
            for node in nodes {
                if !reached(node, holds, out)? {
                    return Ok(false);
                }
            }
        }
        Flow::Parallel(nodes) => {
            let mut goes_on = true;
            for node in nodes {
                goes_on &= reached(node, holds, out)?;
            }
            return Ok(goes_on);
        }
        Flow::Choice { branches, otherwise } => {
            for (guard, branch) in branches {
                if holds(&guard.source)? {
                    return reached(branch, holds, out);
                }
            }
            if let Some(branch) = otherwise {
                return reached(branch, holds, out);
            }
        }
    }
    Ok(true)
}
