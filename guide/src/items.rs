//! 实施清单: one row per item, with the fields a provincial platform imports, as CSV (Chinese
//! headers, as the platforms' templates have them) or JSON.

use dsl::model::{Item, Program};
use serde::Serialize;

use crate::item_guide;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ItemRow {
    pub code: String,
    pub name: String,
    pub title: String,
    pub item_type: String,
    pub department: String,
    pub handling: String,
    pub legal_limit: Option<u32>,
    pub promised_limit: u32,
    pub visits: u32,
    pub fee: String,
    pub online: bool,
    pub basis: String,
}

/// The CSV header, in the order of [`ItemRow`]'s fields.
const HEADER: [&str; 12] = [
    "事项编码",
    "事项标识",
    "事项名称",
    "事项类型",
    "实施主体",
    "办件类型",
    "法定办结时限（工作日）",
    "承诺办结时限（工作日）",
    "到办事现场次数",
    "收费标准",
    "是否网办",
    "设定依据",
];

pub fn row(program: &Program, item: &Item) -> ItemRow {
    let guide = item_guide(program, item);
    ItemRow {
        code: guide.code.unwrap_or_default(),
        name: guide.name,
        title: guide.title,
        item_type: guide.item_type,
        department: guide.department.title,
        handling: guide.handling,
        legal_limit: guide.legal_limit,
        promised_limit: guide.promised_limit,
        visits: guide.visits,
        fee: guide.fee,
        online: guide.online,
        basis: guide.basis.unwrap_or_default(),
    }
}

/// The rows as CSV text (RFC 4180; a UTF-8 byte-order mark first, so that spreadsheet
/// programs read the Chinese as UTF-8).
pub fn csv(rows: &[ItemRow]) -> Result<String, csv::Error> {
    let mut writer = csv::WriterBuilder::new().has_headers(false).from_writer(vec![0xEF, 0xBB, 0xBF]);
    writer.write_record(HEADER)?;
    for row in rows {
        let legal = row.legal_limit.map(|d| d.to_string()).unwrap_or_default();
        writer.write_record([
            row.code.as_str(),
            &row.name,
            &row.title,
            &row.item_type,
            &row.department,
            &row.handling,
            &legal,
            &row.promised_limit.to_string(),
            &row.visits.to_string(),
            &row.fee,
            if row.online { "是" } else { "否" },
            &row.basis,
        ])?;
    }
    let bytes = writer.into_inner().map_err(|e| e.into_error())?;
    Ok(String::from_utf8(bytes).unwrap_or_default())
}
