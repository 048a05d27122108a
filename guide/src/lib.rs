//! 办事指南: what an applicant reads before coming, derived from the checked program the engine
//! compiles its flows from, so that the guide states what the system does — the same
//! materials, limits, steps and departments — and cannot drift from it.
//!
//! Pure, as `dsl` is: a [`Program`] in, a [`Guide`] out (serialisable: the JSON form), and
//! text out of the renderers ([`markdown`], [`html`], the item list's [`items::csv`]). Nothing here reads files or knows the CLI.
//!
//! Element names and order follow published guides (GB/T 39046 and the provinces' 办事指南):
//! basic information, conditions, materials, procedure, flow chart; a joint process
//! (一件事) adds what it saves against applying for each item separately.

pub mod html;
pub mod items;
pub mod markdown;
pub mod notice;

use std::collections::HashSet;

use dsl::analysis;
use dsl::model::{Form, GuideInfo, Handling, Item, MaterialSource, Process, Program, Rule};
use serde::Serialize;

/// The guide of a process (its own, then one per item it runs) or of a lone item.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Guide {
    /// Present when the guide is a joint process's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub process: Option<ProcessGuide>,
    pub items: Vec<ItemGuide>,
}

/// A name and its title, as the flow files give them (`samr`, `市场监督管理局`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Named {
    pub name: String,
    pub title: String,
}

/// A condition an applicant must meet: the sentence of the rule's `else` message; the rule
/// itself where the flow gives no message (a published guide should have one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Condition {
    pub text: String,
    pub rule: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ItemGuide {
    pub name: String,
    pub title: String,
    pub code: Option<String>,
    /// 事项类型: the title of GB/T 39046 A.1 (行政许可, 公共服务, …) and its code.
    pub item_type: String,
    pub item_type_code: String,
    /// 实施主体.
    pub department: Named,
    /// 办件类型: 即办件 or 承诺件.
    pub handling: String,
    /// 法定办结时限, in working days.
    pub legal_limit: Option<u32>,
    /// 承诺办结时限, in working days (0 for 即办件: done at the window).
    pub promised_limit: u32,
    /// 到办事现场次数.
    pub visits: u32,
    /// 收费标准: `不收费`, or the fee as written.
    pub fee: String,
    /// 设定依据.
    pub basis: Option<String>,
    /// 是否网办.
    pub online: bool,
    /// 受理条件.
    pub conditions: Vec<Condition>,
    /// 申请材料, in the order written.
    pub materials: Vec<MaterialLine>,
    /// 办理流程: the steps in the order written, numbered from 1.
    pub steps: Vec<StepLine>,
    /// 审批结果: the licence it issues.
    pub result: Option<Named>,
    pub service: Service,
}

/// Where, when and whom to ask: what only the guide says (the flow's `where`, `hours`,
/// `contact`, `complaint`, `url`, `serves` and `faq`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Service {
    /// 服务对象: 自然人, 法人.
    pub serves: Vec<String>,
    /// 办理地点.
    pub place: Option<String>,
    /// 办理时间.
    pub hours: Option<String>,
    /// 咨询方式.
    pub contact: Option<String>,
    /// 监督投诉方式.
    pub complaint: Option<String>,
    /// 网上办理地址.
    pub url: Option<String>,
    /// 常见问题.
    pub faqs: Vec<(String, String)>,
}

impl Service {
    fn from(guide: &GuideInfo) -> Service {
        Service {
            serves: guide.serves.iter().map(|s| s.title().to_string()).collect(),
            place: guide.place.clone(),
            hours: guide.hours.clone(),
            contact: guide.contact.clone(),
            complaint: guide.complaint.clone(),
            url: guide.url.clone(),
            faqs: guide.faqs.clone(),
        }
    }

    /// 办理地点、时间、咨询、投诉, as rows of a table (only those given).
    pub fn rows(&self) -> Vec<(&'static str, String)> {
        [
            ("办理地点", &self.place),
            ("办理时间", &self.hours),
            ("咨询方式", &self.contact),
            ("监督投诉方式", &self.complaint),
        ]
        .into_iter()
        .filter_map(|(name, value)| value.clone().map(|v| (name, v)))
        .collect()
    }

    /// What a published guide would lack: the names of the elements not given.
    pub fn missing(&self) -> Vec<&'static str> {
        let mut missing = Vec::new();
        for (name, value) in [("办理地点", &self.place), ("咨询方式", &self.contact), ("监督投诉方式", &self.complaint)]
        {
            if value.is_none() {
                missing.push(name);
            }
        }
        missing
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MaterialLine {
    pub name: String,
    pub title: String,
    /// 材料形式: 电子 or 纸质.
    pub form: String,
    /// 份数.
    pub copies: u32,
    /// 来源渠道, as a guide says it.
    pub source: String,
    /// 免提交: shared data or an e-licence supplies it; the applicant brings nothing.
    pub exempt: bool,
    /// 容缺受理: may follow after acceptance.
    pub tolerated: bool,
    /// 告知承诺: a written promise may replace it.
    pub promise: bool,
    pub optional: bool,
    /// When it is needed only in some cases: the rule, as written.
    pub when: Option<String>,
    /// The items asking for it (in a process guide, where items share it).
    pub items: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StepLine {
    pub number: usize,
    pub name: String,
    pub title: String,
    pub department: Named,
    /// 会签: departments that co-sign.
    pub cosign: Vec<Named>,
    /// 环节时限, in working days.
    pub limit: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProcessGuide {
    pub name: String,
    pub title: String,
    pub code: Option<String>,
    /// 受理窗口 (一窗受理).
    pub window: Named,
    /// 承诺办结时限 of the whole process, in working days.
    pub sla: Option<u32>,
    /// 最多跑几次.
    pub visits_at_most: Option<u32>,
    pub conditions: Vec<Condition>,
    /// The items it runs (联办事项), in the order the flow names them.
    pub items: Vec<ProcessItem>,
    /// Every department involved.
    pub departments: Vec<Named>,
    /// 申请材料, once each: the materials of all items merged by name, in the order first asked.
    pub materials: Vec<MaterialLine>,
    pub savings: Savings,
    pub service: Service,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProcessItem {
    pub name: String,
    pub title: String,
    pub department: Named,
    pub handling: String,
    pub promised_limit: u32,
    /// Runs only when a guard of the flow holds (a branch), or always.
    pub conditional: bool,
}

/// What applying once saves against applying for each item separately (`onetrip report`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Savings {
    pub materials_total: usize,
    pub materials_asked: usize,
    pub days_separately: u32,
    pub days: u32,
    pub trips_separately: u32,
    pub trips: u32,
}

/// The guide of `name`: a process (its guide and its items'), or an item. `None` when the
/// program has neither.
pub fn guide(program: &Program, name: &str) -> Option<Guide> {
    if let Some(process) = program.process(name) {
        let items = process.flow.items();
        let mut seen = HashSet::new();
        let items = items.into_iter().filter(|i| seen.insert(*i)).filter_map(|i| program.item(i));
        return Some(Guide {
            process: Some(process_guide(program, process)),
            items: items.map(|i| item_guide(program, i)).collect(),
        });
    }
    program.item(name).map(|item| Guide { process: None, items: vec![item_guide(program, item)] })
}

fn named_department(program: &Program, name: &str) -> Named {
    Named {
        name: name.to_string(),
        title: program.department(name).map_or_else(|| name.to_string(), |d| d.title.clone()),
    }
}

fn conditions(rule: Option<&Rule>) -> Vec<Condition> {
    rule.map(|r| Condition { text: r.message.clone().unwrap_or_else(|| r.source.clone()), rule: r.source.clone() })
        .into_iter()
        .collect()
}

fn handling(item: &Item) -> String {
    match item.handling {
        Handling::Immediate => "即办件",
        Handling::Promised => "承诺件",
    }
    .to_string()
}

/// Where a material comes from, as a guide says it, and whether the applicant is spared it.
fn source(program: &Program, source: &MaterialSource) -> (String, bool) {
    match source {
        MaterialSource::Applicant => ("申请人自备".to_string(), false),
        MaterialSource::Shared { department, dataset } => {
            let department = program.department(department);
            let dataset_title = department
                .and_then(|d| d.datasets.iter().find(|(n, _)| n == dataset))
                .map_or(dataset.as_str(), |(_, t)| t.as_str());
            let department_title = department.map_or("", |d| d.title.as_str());
            (format!("数据共享：{department_title}{dataset_title}"), true)
        }
        MaterialSource::Licence { item, licence } => {
            let producer = program.item(item);
            let licence_title = producer
                .and_then(|i| i.licence.as_ref())
                .filter(|l| &l.name == licence)
                .map_or(licence.as_str(), |l| l.title.as_str());
            let department = producer.map_or_else(String::new, |i| named_department(program, &i.department).title);
            (format!("电子证照：{licence_title}（{department}核发）"), true)
        }
    }
}

fn material_line(program: &Program, item: &Item, material: &dsl::model::Material) -> MaterialLine {
    let (source, exempt) = source(program, &material.source);
    MaterialLine {
        name: material.name.clone(),
        title: material.title.clone(),
        form: match material.form {
            Form::Electronic => "电子",
            Form::Paper => "纸质",
            Form::Copy => "复印件",
        }
        .to_string(),
        copies: material.copies,
        source,
        exempt,
        tolerated: material.tolerated,
        promise: material.promise,
        optional: material.optional,
        when: material.condition.as_ref().map(|c| c.source.clone()),
        items: vec![item.name.clone()],
    }
}

/// An item's guide, from the item as checked.
pub fn item_guide(program: &Program, item: &Item) -> ItemGuide {
    ItemGuide {
        name: item.name.clone(),
        title: item.title.clone(),
        code: item.code.clone(),
        item_type: item.item_type.title().to_string(),
        item_type_code: item.item_type.code().to_string(),
        department: named_department(program, &item.department),
        handling: handling(item),
        legal_limit: item.legal_limit,
        promised_limit: item.promised_days(),
        visits: item.visits,
        fee: item.fee.as_ref().map_or_else(|| "不收费".to_string(), |fee| format!("{fee}元")),
        basis: item.basis.clone(),
        online: item.online,
        conditions: conditions(item.eligibility.as_ref()),
        materials: item.materials.iter().map(|m| material_line(program, item, m)).collect(),
        steps: item
            .steps
            .iter()
            .enumerate()
            .map(|(i, step)| StepLine {
                number: i + 1,
                name: step.name.clone(),
                title: step.label.clone().unwrap_or_else(|| step.name.clone()),
                department: named_department(program, &step.department),
                cosign: step.cosign.iter().map(|d| named_department(program, d)).collect(),
                limit: step.limit,
            })
            .collect(),
        result: item.licence.as_ref().map(|l| Named { name: l.name.clone(), title: l.title.clone() }),
        service: Service::from(&item.guide),
    }
}

/// A process's own guide: its figures from the same analysis as `onetrip report`, its
/// materials merged across its items.
pub fn process_guide(program: &Program, process: &Process) -> ProcessGuide {
    let report = analysis::report(program, process);
    let asked: HashSet<&str> = report.asked.iter().map(|(name, _)| name.as_str()).collect();
    let always = always_run(&process.flow);
    let mut items = Vec::new();
    let mut materials: Vec<MaterialLine> = Vec::new();
    for name in process.flow.items() {
        let Some(item) = program.item(name) else { continue };
        if items.iter().any(|i: &ProcessItem| i.name == item.name) {
            continue;
        }
        items.push(ProcessItem {
            name: item.name.clone(),
            title: item.title.clone(),
            department: named_department(program, &item.department),
            handling: handling(item),
            promised_limit: item.promised_days(),
            conditional: !always.contains(name),
        });
        for material in &item.materials {
            let mut line = material_line(program, item, material);
            // A licence issued earlier in this process is at hand; one issued elsewhere is
            // asked for (as `onetrip report` counts it).
            if matches!(material.source, MaterialSource::Licence { .. }) {
                line.exempt = !asked.contains(material.name.as_str());
            }
            match materials.iter_mut().find(|m| m.name == line.name) {
                Some(merged) => {
                    merged.items.push(item.name.clone());
                    // Asked of the applicant by any item: asked.
                    if !line.exempt && merged.exempt {
                        *merged = MaterialLine { items: merged.items.clone(), ..line };
                    }
                }
                None => materials.push(line),
            }
        }
    }
    ProcessGuide {
        name: process.name.clone(),
        title: process.title.clone(),
        code: process.code.clone(),
        window: named_department(program, &process.window),
        sla: process.sla,
        visits_at_most: process.visits_at_most,
        conditions: conditions(process.eligibility.as_ref()),
        items,
        departments: report.departments.iter().map(|d| named_department(program, d)).collect(),
        materials,
        savings: Savings {
            materials_total: report.materials_total,
            materials_asked: report.materials_asked,
            days_separately: report.days_separately,
            days: report.days,
            trips_separately: report.trips_separately,
            trips: report.trips,
        },
        service: Service::from(&process.guide),
    }
}

/// Working days as a guide says them: `即办` for none.
pub fn days(days: u32) -> String {
    if days == 0 {
        "即办".to_string()
    } else {
        format!("{days}个工作日")
    }
}

impl ProcessGuide {
    /// 基本信息, as rows of a table: what each renderer shows.
    pub fn basic_rows(&self) -> Vec<(&'static str, String)> {
        let mut rows = vec![("事项名称", self.title.clone())];
        if let Some(code) = &self.code {
            rows.push(("事项编码", code.clone()));
        }
        rows.push(("受理窗口", self.window.title.clone()));
        let departments: Vec<&str> = self.departments.iter().map(|d| d.title.as_str()).collect();
        rows.push(("联办部门", departments.join("、")));
        if let Some(sla) = self.sla {
            rows.push(("承诺办结时限", days(sla)));
        }
        if let Some(visits) = self.visits_at_most {
            rows.push(("到办事现场次数", format!("最多跑{visits}次")));
        }
        if let Some(url) = &self.service.url {
            rows.push(("网上办理地址", url.clone()));
        }
        rows
    }

    /// 一次办成: what applying once saves, one sentence each.
    pub fn savings_lines(&self) -> Vec<String> {
        let s = &self.savings;
        vec![
            format!("申请材料：各事项分别办理共需 {} 项，一件事一次提交 {} 项", s.materials_total, s.materials_asked),
            format!("办理时限：分别办理 {}，一件事 {}", days(s.days_separately), days(s.days)),
            format!("跑动次数：分别办理 {} 次，一件事 {} 次", s.trips_separately, s.trips),
        ]
    }
}

impl ItemGuide {
    /// 基本信息, as rows of a table: what each renderer shows.
    pub fn basic_rows(&self) -> Vec<(&'static str, String)> {
        let mut rows = vec![("事项名称", self.title.clone())];
        if let Some(code) = &self.code {
            rows.push(("事项编码", code.clone()));
        }
        rows.push(("事项类型", self.item_type.clone()));
        if !self.service.serves.is_empty() {
            rows.push(("服务对象", self.service.serves.join("、")));
        }
        rows.push(("实施主体", self.department.title.clone()));
        rows.push(("办件类型", self.handling.clone()));
        if let Some(legal) = self.legal_limit {
            rows.push(("法定办结时限", days(legal)));
        }
        rows.push(("承诺办结时限", days(self.promised_limit)));
        rows.push(("到办事现场次数", format!("{}次", self.visits)));
        rows.push(("收费标准", self.fee.clone()));
        if let Some(basis) = &self.basis {
            rows.push(("设定依据", basis.clone()));
        }
        rows.push(("是否网办", if self.online { "是" } else { "否" }.to_string()));
        if let Some(url) = &self.service.url {
            rows.push(("网上办理地址", url.clone()));
        }
        rows
    }
}

impl StepLine {
    /// Who acts and how long it may take: `市场监督管理局，会签：公安局，2个工作日`.
    pub fn detail(&self) -> String {
        let mut detail = self.department.title.clone();
        if !self.cosign.is_empty() {
            let cosign: Vec<&str> = self.cosign.iter().map(|d| d.title.as_str()).collect();
            detail.push_str(&format!("，会签：{}", cosign.join("、")));
        }
        if let Some(limit) = self.limit {
            detail.push_str(&format!("，{}", days(limit)));
        }
        detail
    }
}

impl MaterialLine {
    /// 备注: 免提交, 容缺, 告知承诺, 非必要, and when it applies.
    pub fn notes(&self) -> Vec<String> {
        let mut notes = Vec::new();
        if self.exempt {
            notes.push("免提交".to_string());
        }
        if self.tolerated {
            notes.push("可容缺受理".to_string());
        }
        if self.promise {
            notes.push("可告知承诺".to_string());
        }
        if self.optional {
            notes.push("非必要".to_string());
        }
        notes
    }
}

/// The items a case always runs, whatever its guards decide.
fn always_run(flow: &dsl::model::Flow) -> HashSet<&str> {
    always_run_or_stops(flow).0
}

/// The items always run, and whether the case may end within `flow` (an `end` in a branch):
/// what follows it in a sequence then runs only in some cases.
fn always_run_or_stops(flow: &dsl::model::Flow) -> (HashSet<&str>, bool) {
    use dsl::model::Flow;
    match flow {
        Flow::Item(name) => (HashSet::from([name.as_str()]), false),
        Flow::End => (HashSet::new(), true),
        Flow::Sequence(nodes) => {
            let mut always = HashSet::new();
            for node in nodes {
                let (items, stops) = always_run_or_stops(node);
                always.extend(items);
                if stops {
                    return (always, true);
                }
            }
            (always, false)
        }
        Flow::Parallel(nodes) => {
            let runs: Vec<_> = nodes.iter().map(always_run_or_stops).collect();
            let stops = runs.iter().any(|(_, stops)| *stops);
            (runs.into_iter().flat_map(|(items, _)| items).collect(), stops)
        }
        Flow::Choice { branches, otherwise } => {
            let stops = branches.iter().any(|(_, f)| always_run_or_stops(f).1)
                || otherwise.as_deref().is_some_and(|f| always_run_or_stops(f).1);
            (HashSet::new(), stops)
        }
    }
}
