//! The guides as a static site: an index of processes and items, one page per guide, each
//! with its flow chart (SVG, laid out by `diagram`), styled for the screen and for A4 paper.
//! No JavaScript. Every interpolation is escaped (`maud`); the only raw HTML is the chart,
//! whose text `diagram` escapes.

use maud::{html, Markup, PreEscaped, DOCTYPE};

use dsl::model::Program;

use crate::{days, guide, Condition, ItemGuide, MaterialLine, ProcessGuide};

/// A page of the site: its path under the site's root, and its HTML.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub path: String,
    pub html: String,
}

const STYLE: &str = r#"
*{box-sizing:border-box}
body{margin:0;font:15px/1.75 "Noto Sans CJK SC","Source Han Sans SC","PingFang SC","Microsoft YaHei",sans-serif;color:#1f2933;background:#f4f6f8}
main{max-width:210mm;margin:0 auto;background:#fff;padding:14mm 16mm 18mm;min-height:100vh}
nav.crumbs{font-size:13px;margin-bottom:8px}nav.crumbs a{color:#1c5fb8;text-decoration:none}
h1{font-size:24px;text-align:center;margin:4px 0 4px;letter-spacing:2px}
p.code{text-align:center;color:#616e7c;font-size:13px;margin:0 0 18px}
h2{font-size:17px;margin:24px 0 8px;padding-left:8px;border-left:4px solid #b7202e}
table{width:100%;border-collapse:collapse;font-size:14px;margin:6px 0}
th,td{border:1px solid #9aa5b1;padding:5px 8px;text-align:left;vertical-align:top}
th{background:#eef2f6;font-weight:600;white-space:nowrap}
table.basic th{width:9em}
td.num{text-align:center;white-space:nowrap}
.exempt{color:#2f855a}.note{color:#616e7c;font-size:13px}
code{font-family:"Noto Sans Mono CJK SC",monospace;font-size:12px;background:#f4f6f8;padding:0 3px}
ol.steps{padding-left:1.6em}ol.steps li{margin:2px 0}
ul.savings li{margin:2px 0}
dl.faq dt{font-weight:600;margin-top:6px}dl.faq dd{margin:0 0 4px 1.6em}
figure.chart{margin:8px 0;text-align:center}figure.chart svg{max-width:100%;height:auto}
ul.index{list-style:none;padding:0}ul.index li{padding:4px 0;border-bottom:1px dashed #dde3ea}
ul.index a{color:#1c5fb8;text-decoration:none}ul.index .muted{color:#7b8794;font-size:13px;margin-left:8px}
footer{margin-top:24px;color:#7b8794;font-size:12px;text-align:center}
@page{size:A4;margin:16mm 14mm}
@media print{body{background:#fff}main{padding:0;max-width:none;min-height:0}nav.crumbs,footer{display:none}
h2,h1{break-after:avoid}tr,figure.chart,li{break-inside:avoid}a{color:inherit;text-decoration:none}}
"#;

/// The site being built: add processes and items, then [`Site::finish`] adds the index.
#[derive(Debug, Default)]
pub struct Site {
    pages: Vec<Page>,
    processes: Vec<(String, String)>,
    items: Vec<(String, String, String)>,
}

impl Site {
    /// Adds the guide of `name` (a process: its page and each of its items'; an item: its
    /// page). `false` when the program has no such process or item.
    pub fn add(&mut self, program: &Program, name: &str) -> bool {
        let Some(guide) = guide(program, name) else { return false };
        let process = guide.process.as_ref().map(|p| (p.name.as_str(), p.title.as_str()));
        if let Some(page) = guide.process.as_ref().map(|p| process_page(program, p)) {
            self.pages.push(page);
        }
        for item in &guide.items {
            if !self.items.iter().any(|(n, ..)| n == &item.name) {
                self.pages.push(item_page(program, item, process));
            }
        }
        self.list_only(program, name)
    }

    /// Lists the guide of `name` in the index only, from the names and titles alone (no guide
    /// is made: `onetrip serve` lists every deployed flow on each request for the index, and
    /// makes a page only when it is asked for, [`page`]).
    pub fn list_only(&mut self, program: &Program, name: &str) -> bool {
        let items: Vec<&str> = match program.process(name) {
            Some(process) => {
                if !self.processes.iter().any(|(n, _)| n == &process.name) {
                    self.processes.push((process.name.clone(), process.title.clone()));
                }
                process.flow.items()
            }
            None if program.item(name).is_some() => vec![name],
            None => return false,
        };
        for item in items.into_iter().filter_map(|i| program.item(i)) {
            if !self.items.iter().any(|(n, ..)| n == &item.name) {
                let department = crate::named_department(program, &item.department).title;
                self.items.push((item.name.clone(), item.title.clone(), department));
            }
        }
        true
    }

    /// Every page, the index (`index.html`) first.
    pub fn finish(self, title: &str) -> Vec<Page> {
        let mut pages = vec![self.index(title)];
        pages.extend(self.pages);
        pages
    }

    /// The index of what was added or listed.
    pub fn index(&self, title: &str) -> Page {
        let index = layout(
            title,
            html! {},
            html! {
                h1 { (title) }
                @if !self.processes.is_empty() {
                    h2 { "一件事（联办）" }
                    ul.index { @for (name, title) in &self.processes {
                        li { a href={ "processes/" (name) ".html" } { (title) } }
                    } }
                }
                h2 { "服务事项" }
                ul.index { @for (name, title, department) in &self.items {
                    li { a href={ "items/" (name) ".html" } { (title) } span.muted { (department) } }
                } }
            },
        );
        Page { path: "index.html".into(), html: index.into_string() }
    }
}

/// One page of a site, by its path (`processes/P.html`, `items/I.html`), for the process or
/// item of that name in `program`; an item's page links back to `program`'s process.
pub fn page(program: &Program, path: &str) -> Option<Page> {
    let name = page_name(path)?;
    if path.starts_with("processes/") {
        let process = crate::process_guide(program, program.process(name)?);
        return Some(process_page(program, &process));
    }
    let item = crate::item_guide(program, program.item(name)?);
    let process = program.processes.iter().find(|p| p.flow.items().contains(&name));
    Some(item_page(program, &item, process.map(|p| (p.name.as_str(), p.title.as_str()))))
}

/// The process or item a page's path names: `processes/P.html` → `P`, `items/I.html` → `I`.
pub fn page_name(path: &str) -> Option<&str> {
    path.strip_prefix("processes/").or_else(|| path.strip_prefix("items/"))?.strip_suffix(".html")
}

fn item_path(name: &str) -> String {
    format!("items/{name}.html")
}

/// The flow chart of a process or item, as SVG text (empty if it does not compile).
fn chart(program: &Program, name: &str) -> String {
    dsl::compile(program, name)
        .map(|flow| diagram::flow::svg(&flow, &diagram::flow::Options::default()))
        .unwrap_or_default()
}

fn layout(title: &str, crumbs: Markup, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="zh-CN" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) }
                style { (PreEscaped(STYLE)) }
            }
            body { main {
                nav.crumbs { (crumbs) }
                (body)
                footer { "本指南由 onetrip 根据系统实际运行的流程定义生成。" }
            } }
        }
    }
}

fn basic(rows: &[(&str, String)]) -> Markup {
    html! { table.basic { @for (name, value) in rows { tr { th { (name) } td { (value) } } } } }
}

fn conditions(conditions: &[Condition]) -> Markup {
    html! {
        @if conditions.is_empty() { p { "无特别条件。" } }
        @else { ol { @for c in conditions { li { (c.text) } } } }
    }
}

fn materials(materials: &[MaterialLine]) -> Markup {
    let asked = materials.iter().filter(|m| !m.exempt).count();
    html! {
        table.materials {
            tr { th { "序号" } th { "材料名称" } th { "形式" } th { "份数" } th { "来源渠道" } th { "备注" } }
            @for (i, m) in materials.iter().enumerate() {
                tr {
                    td.num { (i + 1) }
                    td { (m.title) }
                    td.num { (m.form) }
                    td.num { (m.copies) }
                    td class=[m.exempt.then_some("exempt")] { (m.source) }
                    td.note {
                        (m.notes().join("；"))
                        @if let Some(when) = &m.when { @if !m.notes().is_empty() { "；" } "适用情形：" code { (when) } }
                    }
                }
            }
        }
        p.note { "共 " (materials.len()) " 项材料，申请人需提交 " (asked) " 项，其余 " (materials.len() - asked) " 项免提交。" }
    }
}

/// The sections of where, when, whom to ask and frequent questions, numbered from `number`.
fn service(service: &crate::Service, number: usize) -> Markup {
    const NUMBERS: [&str; 10] = ["一", "二", "三", "四", "五", "六", "七", "八", "九", "十"];
    let rows = service.rows();
    let numeral = |n: usize| NUMBERS.get(n - 1).copied().unwrap_or("十");
    let faq_number = if rows.is_empty() { number } else { number + 1 };
    html! {
        @if !rows.is_empty() { h2 { (numeral(number)) "、办理地点、时间与咨询投诉" } (basic(&rows)) }
        @if !service.faqs.is_empty() {
            h2 { (numeral(faq_number)) "、常见问题" }
            dl.faq { @for (question, answer) in &service.faqs { dt { (question) } dd { (answer) } } }
        }
    }
}

fn figure(chart: &str) -> Markup {
    html! { @if !chart.is_empty() { figure.chart { (PreEscaped(chart)) } } }
}

fn process_page(program: &Program, process: &ProcessGuide) -> Page {
    let chart = chart(program, &process.name);
    let title = format!("{} 办事指南", process.title);
    let html = layout(
        &title,
        html! { a href="../index.html" { "办事指南" } " › " (process.title) },
        html! {
            h1 { (title) }
            @if let Some(code) = &process.code { p.code { "事项编码：" (code) } }
            h2 { "一、基本信息" } (basic(&process.basic_rows()))
            h2 { "二、适用条件" } (conditions(&process.conditions))
            h2 { "三、联办事项" }
            table {
                tr { th { "序号" } th { "事项名称" } th { "实施部门" } th { "办件类型" } th { "承诺办结时限" } th { "办理情形" } }
                @for (i, item) in process.items.iter().enumerate() {
                    tr {
                        td.num { (i + 1) }
                        td { a href={ "../" (item_path(&item.name)) } { (item.title) } }
                        td { (item.department.title) }
                        td.num { (item.handling) }
                        td.num { (days(item.promised_limit)) }
                        td { @if item.conditional { "符合情形的办理" } @else { "均需办理" } }
                    }
                }
            }
            h2 { "四、申请材料" } (materials(&process.materials))
            h2 { "五、办理流程图" } (figure(&chart))
            h2 { "六、一次办成" }
            ul.savings { @for line in process.savings_lines() { li { (line) } } }
            (service(&process.service, 7))
        },
    );
    Page { path: format!("processes/{}.html", process.name), html: html.into_string() }
}

fn item_page(program: &Program, item: &ItemGuide, process: Option<(&str, &str)>) -> Page {
    let chart = chart(program, &item.name);
    let title = format!("{} 办事指南", item.title);
    let html = layout(
        &title,
        html! {
            a href="../index.html" { "办事指南" }
            @if let Some((name, title)) = process { " › " a href={ "../processes/" (name) ".html" } { (title) } }
            " › " (item.title)
        },
        html! {
            h1 { (title) }
            @if let Some(code) = &item.code { p.code { "事项编码：" (code) } }
            h2 { "一、基本信息" } (basic(&item.basic_rows()))
            h2 { "二、受理条件" } (conditions(&item.conditions))
            h2 { "三、申请材料" } (materials(&item.materials))
            h2 { "四、办理流程" }
            ol.steps { @for step in &item.steps { li { (step.title) span.note { "（" (step.detail()) "）" } } } }
            (figure(&chart))
            @if let Some(result) = &item.result { h2 { "五、审批结果" } p { (result.title) } }
            (service(&item.service, if item.result.is_some() { 6 } else { 5 }))
        },
    );
    Page { path: item_path(&item.name), html: html.into_string() }
}

/// A 一次告知 as a standalone page (to print and hand over).
pub fn notice(notice: &crate::notice::Notice) -> String {
    let title = format!("{} 一次告知书", notice.title);
    let departments: Vec<&str> = notice.departments.iter().map(|d| d.title.as_str()).collect();
    layout(
        &title,
        html! {},
        html! {
            h1 { (title) }
            h2 { "一、办理结论" }
            @if notice.eligible { p { "您符合申办条件，可以申请。" } }
            @else {
                p { "根据您提供的情况，暂不符合申办条件：" }
                ol { @for reason in &notice.refusals { li { (reason) } } }
            }
            h2 { "二、将为您办理的事项" }
            ol { @for item in &notice.items { li { (item.title) } } }
            p { "涉及部门：" (departments.join("、")) "。承诺办结时限：" (days(notice.days)) "；到现场最多 " (notice.trips) " 次。" }
            h2 { "三、请准备的材料" }
            @if notice.bring.is_empty() { p { "无需提交材料。" } }
            @else {
                table {
                    tr { th { "序号" } th { "材料名称" } th { "形式" } th { "份数" } th { "备注" } }
                    @for (i, m) in notice.bring.iter().enumerate() {
                        tr { td.num { (i + 1) } td { (m.title) } td.num { (m.form) } td.num { (m.copies) } td.note { (m.notes().join("；")) } }
                    }
                }
            }
            @if notice.spared > 0 { p.note { "另有 " (notice.spared) " 项材料通过数据共享或电子证照获取，您无需提交。" } }
        },
    )
    .into_string()
}
