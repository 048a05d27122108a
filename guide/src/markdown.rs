//! A guide as Markdown: the process's guide first, then each item's, separated by rules.

use std::fmt::Write;

use crate::{days, Condition, Guide, ItemGuide, MaterialLine, ProcessGuide};

pub fn render(guide: &Guide) -> String {
    let mut out = String::new();
    if let Some(process) = &guide.process {
        process_guide(&mut out, process);
    }
    for (i, item) in guide.items.iter().enumerate() {
        if i > 0 || guide.process.is_some() {
            out.push_str("\n---\n\n");
        }
        item_guide(&mut out, item);
    }
    out
}

/// Text fit for a table cell: no line breaks, and `|` escaped (rules have `||`).
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

fn chinese_number(n: usize) -> &'static str {
    ["一", "二", "三", "四", "五", "六", "七", "八", "九", "十"].get(n).copied().unwrap_or("十")
}

/// Numbered section headings: 一、二、三…
struct Sections(usize);

impl Sections {
    fn next(&mut self, out: &mut String, title: &str) {
        let _ = writeln!(out, "\n## {}、{title}\n", chinese_number(self.0));
        self.0 += 1;
    }
}

fn table(out: &mut String, rows: &[(&str, String)]) {
    out.push_str("| 项目 | 内容 |\n|---|---|\n");
    for (name, value) in rows {
        let _ = writeln!(out, "| {name} | {} |", cell(value));
    }
}

fn conditions(out: &mut String, conditions: &[Condition]) {
    if conditions.is_empty() {
        out.push_str("无特别条件。\n");
    }
    for (i, condition) in conditions.iter().enumerate() {
        let _ = writeln!(out, "{}. {}", i + 1, condition.text);
    }
}

fn materials(out: &mut String, materials: &[MaterialLine]) {
    out.push_str("| 序号 | 材料名称 | 材料形式 | 份数 | 来源渠道 | 备注 |\n|---|---|---|---|---|---|\n");
    for (i, material) in materials.iter().enumerate() {
        let mut notes = material.notes();
        if let Some(when) = &material.when {
            notes.push(format!("适用情形：`{when}`"));
        }
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} |",
            i + 1,
            cell(&material.title),
            material.form,
            material.copies,
            cell(&material.source),
            cell(&notes.join("；"))
        );
    }
    let asked = materials.iter().filter(|m| !m.exempt).count();
    let _ = writeln!(
        out,
        "\n共 {} 项材料，申请人需提交 {asked} 项，其余 {} 项免提交。",
        materials.len(),
        materials.len() - asked
    );
}

fn process_guide(out: &mut String, process: &ProcessGuide) {
    let _ = writeln!(out, "# {} 办事指南", process.title);
    let mut section = Sections(0);
    section.next(out, "基本信息");
    let rows = process.basic_rows();
    table(out, &rows);
    section.next(out, "适用条件");
    conditions(out, &process.conditions);
    section.next(out, "联办事项");
    out.push_str("| 序号 | 事项名称 | 实施部门 | 办件类型 | 承诺办结时限 | 办理情形 |\n|---|---|---|---|---|---|\n");
    for (i, item) in process.items.iter().enumerate() {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} |",
            i + 1,
            cell(&item.title),
            cell(&item.department.title),
            item.handling,
            days(item.promised_limit),
            if item.conditional { "符合情形的办理" } else { "均需办理" }
        );
    }
    section.next(out, "申请材料");
    materials(out, &process.materials);
    section.next(out, "一次办成");
    for line in process.savings_lines() {
        let _ = writeln!(out, "- {line}");
    }
    service(out, &mut section, &process.service);
}

/// 办理地点和时间, 咨询与投诉, 常见问题: the sections of what was given.
fn service(out: &mut String, section: &mut Sections, service: &crate::Service) {
    let rows = service.rows();
    if !rows.is_empty() {
        section.next(out, "办理地点、时间与咨询投诉");
        table(out, &rows);
    }
    if !service.faqs.is_empty() {
        section.next(out, "常见问题");
        for (i, (question, answer)) in service.faqs.iter().enumerate() {
            let _ = writeln!(out, "{}. **{question}**\n   {answer}", i + 1);
        }
    }
}

fn item_guide(out: &mut String, item: &ItemGuide) {
    let _ = writeln!(out, "# {} 办事指南", item.title);
    let mut section = Sections(0);
    section.next(out, "基本信息");
    let rows = item.basic_rows();
    table(out, &rows);
    section.next(out, "受理条件");
    conditions(out, &item.conditions);
    section.next(out, "申请材料");
    materials(out, &item.materials);
    section.next(out, "办理流程");
    for step in &item.steps {
        let _ = writeln!(out, "{}. {}（{}）", step.number, step.title, step.detail());
    }
    if let Some(result) = &item.result {
        section.next(out, "审批结果");
        let _ = writeln!(out, "{}", result.title);
    }
    service(out, &mut section, &item.service);
}

/// A 一次告知 as Markdown.
pub fn notice(notice: &crate::notice::Notice) -> String {
    let mut out = format!("# {} 一次告知书\n", notice.title);
    let mut section = Sections(0);
    section.next(&mut out, "办理结论");
    if notice.eligible {
        out.push_str("您符合申办条件，可以申请。\n");
    } else {
        out.push_str("根据您提供的情况，暂不符合申办条件：\n\n");
        for (i, reason) in notice.refusals.iter().enumerate() {
            let _ = writeln!(out, "{}. {reason}", i + 1);
        }
    }
    section.next(&mut out, "将为您办理的事项");
    for (i, item) in notice.items.iter().enumerate() {
        let _ = writeln!(out, "{}. {}", i + 1, item.title);
    }
    let departments: Vec<&str> = notice.departments.iter().map(|d| d.title.as_str()).collect();
    let _ = writeln!(
        out,
        "\n涉及部门：{}。承诺办结时限：{}；到现场最多 {} 次。",
        departments.join("、"),
        days(notice.days),
        notice.trips
    );
    section.next(&mut out, "请准备的材料");
    if notice.bring.is_empty() {
        out.push_str("无需提交材料。\n");
    } else {
        out.push_str("| 序号 | 材料名称 | 材料形式 | 份数 | 备注 |\n|---|---|---|---|---|\n");
        for (i, material) in notice.bring.iter().enumerate() {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} |",
                i + 1,
                cell(&material.title),
                material.form,
                material.copies,
                cell(&material.notes().join("；"))
            );
        }
    }
    if notice.spared > 0 {
        let _ = writeln!(out, "\n另有 {} 项材料通过数据共享或电子证照获取，您无需提交。", notice.spared);
    }
    out
}
