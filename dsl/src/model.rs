//! The checked program: every name resolved, every value validated.
//!
//! Built by [`crate::check`] from the syntax trees of a [`crate::Workspace`]. The same types
//! travel inside a [`crate::CompiledFlow`], so they are serde-serialisable; their source
//! locations are for diagnostics and the editor and are left out of the serialised form (and
//! so out of the content hash: reformatting a file never makes a new version).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::span::Location;

#[derive(Debug, Clone, Default)]
pub struct Program {
    pub departments: Vec<Department>,
    pub schemas: Vec<Schema>,
    pub items: Vec<Item>,
    pub processes: Vec<Process>,
    pub(crate) department_index: HashMap<String, usize>,
    pub(crate) schema_index: HashMap<String, usize>,
    pub(crate) item_index: HashMap<String, usize>,
    pub(crate) process_index: HashMap<String, usize>,
}

impl Program {
    pub fn department(&self, name: &str) -> Option<&Department> {
        self.department_index.get(name).map(|&i| &self.departments[i])
    }

    pub fn schema(&self, name: &str) -> Option<&Schema> {
        self.schema_index.get(name).map(|&i| &self.schemas[i])
    }

    pub fn item(&self, name: &str) -> Option<&Item> {
        self.item_index.get(name).map(|&i| &self.items[i])
    }

    pub fn process(&self, name: &str) -> Option<&Process> {
        self.process_index.get(name).map(|&i| &self.processes[i])
    }

    /// Whether item `name` is `base` or a variant of it (`extends`, through any number of
    /// variants): a variant produces its base's licence, so it serves the base's users.
    pub fn is_or_extends(&self, name: &str, base: &str) -> bool {
        let mut current = name;
        // Variants form no cycles once checked; the bound keeps a broken program finite.
        for _ in 0..=self.items.len() {
            if current == base {
                return true;
            }
            match self.item(current).and_then(|i| i.extends.as_deref()) {
                Some(next) => current = next,
                None => return false,
            }
        }
        false
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Department {
    pub name: String,
    pub title: String,
    /// Data sets this department shares (数据共享): name and title.
    pub datasets: Vec<(String, String)>,
    #[serde(skip)]
    pub location: Location,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schema {
    pub name: String,
    pub fields: Vec<SchemaField>,
    #[serde(skip)]
    pub location: Location,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchemaField {
    pub name: String,
    pub ty: FieldType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pii: Option<Pii>,
    #[serde(skip)]
    pub location: Location,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    String,
    Int,
    Double,
    Bool,
    Date,
    List(Box<FieldType>),
    Record(Vec<SchemaField>),
}

impl FieldType {
    /// The field named `name` of a record type.
    pub fn field(&self, name: &str) -> Option<&SchemaField> {
        match self {
            FieldType::Record(fields) => fields.iter().find(|f| f.name == name),
            _ => None,
        }
    }
}

/// Which kind of personal data a field holds; it decides how the field is masked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pii {
    Name,
    Id,
    Phone,
}

impl Pii {
    /// The value with the identifying part hidden, by the common convention: names keep their
    /// first character (`张**`), ID numbers their region and last four (`110105********002X`),
    /// phone numbers their first three and last four (`138****8000`).
    pub fn mask(self, value: &str) -> String {
        let chars: Vec<char> = value.trim().chars().collect();
        let keep = |head: usize, tail: usize| -> String {
            if chars.len() <= head + tail {
                return "*".repeat(chars.len().max(1));
            }
            let hidden = chars.len() - head - tail;
            chars[..head].iter().chain(std::iter::repeat_n(&'*', hidden)).chain(&chars[chars.len() - tail..]).collect()
        };
        match self {
            Pii::Name => match chars.first() {
                Some(first) => std::iter::once(*first)
                    .chain(std::iter::repeat_n('*', chars.len().saturating_sub(1).max(1)))
                    .collect(),
                None => String::new(),
            },
            Pii::Id => keep(6, 4),
            Pii::Phone => keep(3, 4),
        }
    }
}

/// Item types of GB/T 39046-2020 Appendix A.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemType {
    Licensing,
    Penalty,
    Enforcement,
    Levy,
    Benefit,
    Inspection,
    Confirmation,
    Reward,
    Adjudication,
    Other,
    PublicService,
}

impl ItemType {
    pub const ALL: [(&'static str, ItemType, &'static str, &'static str); 11] = [
        ("licensing", ItemType::Licensing, "01", "行政许可"),
        ("penalty", ItemType::Penalty, "02", "行政处罚"),
        ("enforcement", ItemType::Enforcement, "03", "行政强制"),
        ("levy", ItemType::Levy, "04", "行政征收"),
        ("benefit", ItemType::Benefit, "05", "行政给付"),
        ("inspection", ItemType::Inspection, "06", "行政检查"),
        ("confirmation", ItemType::Confirmation, "07", "行政确认"),
        ("reward", ItemType::Reward, "08", "行政奖励"),
        ("adjudication", ItemType::Adjudication, "09", "行政裁决"),
        ("other", ItemType::Other, "10", "其他行政权力"),
        ("public_service", ItemType::PublicService, "20", "公共服务"),
    ];

    pub fn from_keyword(word: &str) -> Option<ItemType> {
        Self::ALL.iter().find(|(k, ..)| *k == word).map(|(_, t, ..)| *t)
    }

    /// The two-digit code of GB/T 39046 A.1.
    pub fn code(self) -> &'static str {
        Self::ALL.iter().find(|(_, t, ..)| *t == self).map_or("10", |(_, _, c, _)| c)
    }

    pub fn title(self) -> &'static str {
        Self::ALL.iter().find(|(_, t, ..)| *t == self).map_or("", |(.., title)| title)
    }
}

/// 即办件 or 承诺件 (GB/T 39046 A.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Handling {
    Immediate,
    Promised,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    pub name: String,
    pub title: String,
    /// The item this one is a variant of (`extends`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extends: Option<String>,
    pub code: Option<String>,
    pub department: String,
    pub item_type: ItemType,
    pub handling: Handling,
    pub legal_limit: Option<u32>,
    pub promised_limit: Option<u32>,
    pub visits: u32,
    /// The fee in yuan as written, `None` when free.
    pub fee: Option<String>,
    pub basis: Option<String>,
    pub online: bool,
    /// Whether a request for supplementary materials (补正) pauses the clock.
    pub supplement_pauses_clock: bool,
    pub eligibility: Option<Rule>,
    pub materials: Vec<Material>,
    /// Steps in declaration order; the first is where the item starts.
    pub steps: Vec<Step>,
    pub licence: Option<Licence>,
    /// What only the published guide says (办理地点, 咨询方式, …).
    #[serde(default, skip_serializing_if = "GuideInfo::is_empty")]
    pub guide: GuideInfo,
    #[serde(skip)]
    pub location: Location,
}

/// What only the published guide (办事指南) of an item or a process says. Left out of a
/// compiled flow's hash when empty, so that flows without it keep their versions.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuideInfo {
    /// 服务对象.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub serves: Vec<Served>,
    /// 办理地点.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub place: Option<String>,
    /// 办理时间.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hours: Option<String>,
    /// 咨询方式.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact: Option<String>,
    /// 监督投诉方式.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub complaint: Option<String>,
    /// 网上办理地址.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// 常见问题: questions and their answers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub faqs: Vec<(String, String)>,
}

impl GuideInfo {
    pub fn is_empty(&self) -> bool {
        self == &GuideInfo::default()
    }
}

/// Whom an item serves (服务对象, GB/T 39046).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Served {
    /// 自然人.
    NaturalPersons,
    /// 法人和其他组织.
    LegalPersons,
}

impl Served {
    pub const ALL: [(&'static str, Served, &'static str); 2] =
        [("natural_persons", Served::NaturalPersons, "自然人"), ("legal_persons", Served::LegalPersons, "法人")];

    pub fn title(self) -> &'static str {
        Self::ALL.iter().find(|(_, s, _)| *s == self).map_or("", |(.., t)| t)
    }
}

impl Item {
    /// The working days this item counts against a process SLA: its promised limit, or
    /// nothing for an immediate item (即办件, done at the window).
    pub fn promised_days(&self) -> u32 {
        match self.handling {
            Handling::Immediate => 0,
            Handling::Promised => self.promised_limit.or(self.legal_limit).unwrap_or(0),
        }
    }

    pub fn step(&self, name: &str) -> Option<&Step> {
        self.steps.iter().find(|s| s.name == name)
    }
}

/// A CEL rule as written, with the message shown when it is false.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    pub source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(skip)]
    pub location: Location,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Material {
    pub name: String,
    pub title: String,
    pub source: MaterialSource,
    /// Required only when this rule holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<Rule>,
    /// May be missing at acceptance (容缺), to be supplied by a deadline.
    pub tolerated: bool,
    /// A written promise may replace it (告知承诺).
    pub promise: bool,
    pub optional: bool,
    pub copies: u32,
    pub form: Form,
    #[serde(skip)]
    pub location: Location,
    /// Where the `from …` clause is, for diagnostics about the source.
    #[serde(skip)]
    pub source_location: Location,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum MaterialSource {
    Applicant,
    /// 数据共享: fetched from a department's data set instead of asked of the applicant.
    Shared {
        department: String,
        dataset: String,
    },
    /// 电子证照: a licence produced by an earlier item.
    Licence {
        item: String,
        licence: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Form {
    Electronic,
    Paper,
    /// 复印件.
    Copy,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    pub name: String,
    pub label: Option<String>,
    /// The department that acts on this step: the item's unless the step says `by`.
    pub department: String,
    /// Departments that must co-sign (加签) before the step completes.
    pub cosign: Vec<String>,
    /// Where completing the step may lead (an officer's choice when there are several).
    pub next: Vec<StepTarget>,
    /// Earlier steps the case may be returned to (退回).
    pub back: Vec<String>,
    /// The step's own limit in working days (环节时限), within the item's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    #[serde(skip)]
    pub location: Location,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepTarget {
    Step(String),
    End,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Licence {
    pub name: String,
    pub title: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Process {
    pub name: String,
    pub title: String,
    /// The process this one is a variant of (`extends`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extends: Option<String>,
    pub code: Option<String>,
    /// The department whose window accepts the application (一窗受理).
    pub window: String,
    pub sla: Option<u32>,
    pub visits_at_most: Option<u32>,
    pub eligibility: Option<Rule>,
    pub flow: Flow,
    pub warnings: Vec<Warning>,
    /// What only the published guide says (办理地点, 咨询方式, …).
    #[serde(default, skip_serializing_if = "GuideInfo::is_empty")]
    pub guide: GuideInfo,
    #[serde(skip)]
    pub location: Location,
}

/// The structured flow of a process over its items.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Flow {
    Item(String),
    /// The process ends here (a branch that finishes the case early).
    End,
    Sequence(Vec<Flow>),
    /// Every branch runs; the flow continues when all have finished.
    Parallel(Vec<Flow>),
    /// The first branch whose guard holds runs; without an `else`, none may run.
    Choice {
        branches: Vec<(Rule, Flow)>,
        otherwise: Option<Box<Flow>>,
    },
}

impl Flow {
    /// Item names in the order they are written.
    pub fn items(&self) -> Vec<&str> {
        let mut out = Vec::new();
        self.collect_items(&mut out);
        out
    }

    fn collect_items<'a>(&'a self, out: &mut Vec<&'a str>) {
        match self {
            Flow::Item(name) => out.push(name),
            Flow::End => {}
            Flow::Sequence(nodes) | Flow::Parallel(nodes) => nodes.iter().for_each(|n| n.collect_items(out)),
            Flow::Choice { branches, otherwise } => {
                branches.iter().for_each(|(_, f)| f.collect_items(out));
                if let Some(f) = otherwise {
                    f.collect_items(out);
                }
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WarningLevel {
    Yellow,
    Red,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WarningAt {
    /// When this share of the SLA has elapsed.
    PercentOfSla(u32),
    Overdue,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Warning {
    pub level: WarningLevel,
    pub at: WarningAt,
}

#[cfg(test)]
mod tests {
    use super::Pii;

    #[test]
    fn personal_data_is_masked_by_convention() {
        assert_eq!(Pii::Id.mask("11010519491231002X"), "110105********002X");
        assert_eq!(Pii::Phone.mask("13812348000"), "138****8000");
        assert_eq!(Pii::Name.mask("张三"), "张*");
        assert_eq!(Pii::Name.mask("欧阳娜娜"), "欧***");
        assert_eq!(Pii::Id.mask("123"), "***");
        assert_eq!(Pii::Name.mask(""), "");
    }
}
