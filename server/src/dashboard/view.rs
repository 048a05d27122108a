//! The dashboard's HTML, with `maud` (every interpolation is escaped). Labels are Chinese, from
//! the flows' titles; figures are in working days.

use std::collections::BTreeMap;

use maud::{html, Markup, PreEscaped, DOCTYPE};

use engine::case::{CaseState, Level, Status};
use engine::stalls::{DepartmentFigures, LongWait, StallFilter, Stalls, WarningEntry, Warnings};
use engine::timeline::CaseTimeline;

use super::Titles;

/// Reloads a visible page every minute; pages work without it.
pub const SCRIPT: &str = "setInterval(function () { if (!document.hidden) { location.reload(); } }, 60000);\n";

const STYLE: &str = r#"
*{box-sizing:border-box}
body{margin:0;font:14px/1.6 "Noto Sans CJK SC","Source Han Sans SC","PingFang SC","Microsoft YaHei",sans-serif;color:#1f2933;background:#f4f6f8}
a{color:#1c5fb8;text-decoration:none}a:hover{text-decoration:underline}
header{background:#16324f;color:#fff;display:flex;align-items:center;gap:24px;padding:0 24px;height:52px}
header .brand{font-weight:700;font-size:16px;letter-spacing:1px}
header nav a{color:#cfe0f5;margin-right:18px}header nav a.active{color:#fff;font-weight:700;border-bottom:2px solid #f0b429;padding-bottom:4px}
header .right{margin-left:auto;display:flex;align-items:center;gap:16px;color:#cfe0f5;font-size:13px}
header form{margin:0}header button{background:none;border:1px solid #7b93ad;color:#fff;border-radius:4px;padding:2px 10px;cursor:pointer}
main{max-width:1280px;margin:0 auto;padding:20px 24px 48px}
h1{font-size:20px;margin:4px 0 16px}h2{font-size:16px;margin:28px 0 10px;padding-left:8px;border-left:4px solid #16324f}
.tiles{display:grid;grid-template-columns:repeat(auto-fit,minmax(150px,1fr));gap:12px}
.tile{background:#fff;border:1px solid #dde3ea;border-radius:6px;padding:12px 16px}
.tile .n{font-size:26px;font-weight:700}.tile .k{color:#52606d;font-size:13px}
.tile.red .n{color:#c62828}.tile.yellow .n{color:#b7791f}.tile.green .n{color:#2f855a}
table{width:100%;border-collapse:collapse;background:#fff;border:1px solid #dde3ea;font-size:13px}
th,td{padding:7px 10px;border-bottom:1px solid #edf0f3;text-align:left;white-space:nowrap}
th{background:#eef2f6;color:#3e4c59;font-weight:600}td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
tr:hover td{background:#f8fafc}
.badge{display:inline-block;border-radius:10px;padding:0 8px;font-size:12px;line-height:20px}
.badge.red{background:#fde8e8;color:#c62828}.badge.yellow{background:#fdf3d8;color:#975a16}
.badge.open{background:#e3effd;color:#1c5fb8}.badge.closed{background:#edf0f3;color:#616e7c}
.late{color:#c62828;font-weight:600}.muted{color:#7b8794}
.picture{background:#fff;border:1px solid #dde3ea;border-radius:6px;padding:12px;overflow-x:auto}
.picture svg{max-width:100%;height:auto}
.filters{display:flex;gap:8px;align-items:center;margin:8px 0 12px}.filters a{padding:2px 10px;border:1px solid #cbd2d9;border-radius:12px;background:#fff}
.filters a.on{background:#16324f;color:#fff;border-color:#16324f}
.signin{max-width:420px;margin:80px auto;background:#fff;border:1px solid #dde3ea;border-radius:8px;padding:28px}
.signin input[type=password]{width:100%;padding:8px;font-size:14px;border:1px solid #cbd2d9;border-radius:4px}
.signin button{margin-top:14px;background:#16324f;color:#fff;border:0;border-radius:4px;padding:8px 20px;font-size:14px;cursor:pointer}
.error{color:#c62828;margin:8px 0}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:4px 16px;background:#fff;border:1px solid #dde3ea;border-radius:6px;padding:12px 16px}
dl.facts dt{color:#52606d}dl.facts dd{margin:0}
footer{color:#7b8794;font-size:12px;margin-top:32px}
@media print{header nav,header form{display:none}body{background:#fff}}
"#;

/// Percent-encodes a path segment or query value.
pub fn url_component(text: &str) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(byte as char),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

fn layout(title: &str, active: &str, today: Option<&str>, body: Markup) -> String {
    let nav = [("/", "总览"), ("/warnings", "预警"), ("/departments", "部门")];
    html! {
        (DOCTYPE)
        html lang="zh-CN" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · onetrip 电子监察" }
                style { (PreEscaped(STYLE)) }
                script src="/dashboard.js" defer {}
            }
            body {
                header {
                    span.brand { "onetrip · 电子监察" }
                    nav {
                        @for (href, label) in nav {
                            a href=(href) class=[(href == active).then_some("active")] { (label) }
                        }
                    }
                    div.right {
                        @if let Some(today) = today { span { "统计日 " (today) "（工作日计）" } }
                        form method="post" action="/signout" { button type="submit" { "退出" } }
                    }
                }
                main { (body) }
            }
        }
    }
    .into_string()
}

/// An instant (RFC 3339) as Beijing time, to the minute: `2026-10-20 10:00`.
fn minute(at: &str) -> String {
    match chrono::DateTime::parse_from_rfc3339(at) {
        Ok(t) => (t.with_timezone(&chrono::Utc) + chrono::Duration::hours(8)).format("%Y-%m-%d %H:%M").to_string(),
        Err(_) => at.to_string(),
    }
}

/// An instant's Beijing day.
fn day(at: &str) -> String {
    engine::case::date_of(at)
}

fn share(x: f64) -> String {
    format!("{:.0}%", x * 100.0)
}

pub fn status_label(status: &str) -> &'static str {
    match status {
        "open" => "在办",
        "awaiting_supplement" => "补正中",
        "completed" => "办结",
        "rejected" => "不予许可",
        "withdrawn" => "撤回",
        "terminated" => "终止",
        _ => "其他",
    }
}

fn status_of(status: Status) -> &'static str {
    status_label(serde_json::to_value(status).ok().as_ref().and_then(|v| v.as_str()).unwrap_or(""))
}

fn level_badge(level: &str) -> Markup {
    match level {
        "red" => html! { span.badge.red { "红牌" } },
        _ => html! { span.badge.yellow { "黄牌" } },
    }
}

fn case_link(id: &str) -> Markup {
    html! { a href={ "/timeline/" (url_component(id)) } { code { (id) } } }
}

fn process_link(name: &str, titles: &Titles) -> Markup {
    html! { a href={ "/processes/" (url_component(name)) } { (titles.process(name)) } }
}

/// A count of a map, 0 when absent.
fn count(map: &BTreeMap<String, u64>, key: &str) -> u64 {
    map.get(key).copied().unwrap_or(0)
}

pub fn message(title: &str, text: &str) -> String {
    layout(title, "", None, html! { h1 { (title) } p { (text) } p { a href="/" { "返回总览" } } })
}

pub fn signin(next: &str, error: Option<&str>) -> String {
    html! {
        (DOCTYPE)
        html lang="zh-CN" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "登录 · onetrip 电子监察" }
                style { (PreEscaped(STYLE)) }
            }
            body {
                form.signin method="post" action="/signin" {
                    h1 { "onetrip 电子监察" }
                    p.muted { "请输入监察令牌（由管理员以 " code { "onetrip token --role supervisor" } " 生成）。" }
                    @if let Some(error) = error { p.error role="alert" { (error) } }
                    input type="password" name="token" autocomplete="current-password" required placeholder="ot_…" aria-label="令牌";
                    input type="hidden" name="next" value=(next);
                    button type="submit" { "登录" }
                }
            }
        }
    }
    .into_string()
}

fn longest_table(rows: &[LongWait], titles: &Titles) -> Markup {
    html! {
        @if rows.is_empty() {
            p.muted { "没有在办的待办。" }
        } @else {
            table.longest {
                thead { tr {
                    th { "案件" } th { "流程" } th { "事项 · 环节" } th { "部门" } th { "开始" }
                    th.num { "已等待" } th.num { "超环节时限" } th.num { "超承诺时限" } th { "" }
                } }
                tbody {
                    @for w in rows {
                        tr {
                            td { (case_link(&w.case_id)) }
                            td { (process_link(&w.process, titles)) }
                            td { (titles.item(&w.item)) " · " (titles.step(&w.item, &w.step)) }
                            td { (titles.department(&w.department)) }
                            td { (day(&w.since)) }
                            td.num { (w.days) " 天" }
                            td.num class=[(w.days_past_task_limit > 0).then_some("late")] { (w.days_past_task_limit) }
                            td.num class=[(w.days_past_sla > 0).then_some("late")] { (w.days_past_sla) }
                            td { @if w.awaiting_supplement { span.badge.open { "补正中" } } }
                        }
                    }
                }
            }
        }
    }
}

fn warning_table(rows: &[&WarningEntry], titles: &Titles) -> Markup {
    html! {
        @if rows.is_empty() {
            p.muted { "没有预警。" }
        } @else {
            table.warnings {
                thead { tr { th { "级别" } th { "案件" } th { "流程" } th { "时限" } th { "部门" } th { "时间" } th { "案件状态" } } }
                tbody {
                    @for w in rows {
                        tr data-level=(w.level) {
                            td { (level_badge(&w.level)) }
                            td { (case_link(&w.case_id)) }
                            td { (process_link(&w.process, titles)) }
                            td { (titles.scope(&w.rule)) }
                            td { (titles.department(&w.department)) }
                            td { (minute(&w.at)) }
                            td { @if w.open { span.badge.open { "在办" } } @else { span.badge.closed { "已结" } } }
                        }
                    }
                }
            }
        }
    }
}

/// The figures of each process, one row each (every deployed one, with cases or not).
fn process_table(stalls: &Stalls, titles: &Titles) -> Markup {
    let mut names: Vec<&str> = titles.flows.iter().map(|f| f.name.as_str()).collect();
    for p in &stalls.processes {
        if !names.contains(&p.process.as_str()) {
            names.push(&p.process);
        }
    }
    let waiting = |name: &str| -> (u64, u64) {
        stalls.states.iter().filter(|s| s.process == name).fold((0, 0), |(w, o), s| (w + s.waiting, o + s.overdue))
    };
    html! {
        table.processes {
            thead { tr {
                th { "流程" } th.num { "在办" } th.num { "补正中" } th.num { "办结" } th.num { "不予许可" }
                th.num { "撤回/终止" } th.num { "待办" } th.num { "超期待办" } th.num { "一次办结率" }
                th.num { "平均跑动" } th.num { "按时办结率" } th { "好差评" }
            } }
            tbody {
                @for name in names {
                    @let figures = stalls.processes.iter().find(|p| p.process == name);
                    @let (open_tasks, overdue) = waiting(name);
                    tr data-process=(name) {
                        td { (process_link(name, titles)) }
                        @if let Some(p) = figures {
                            td.num { (count(&p.cases, "open")) }
                            td.num { (count(&p.cases, "awaiting_supplement")) }
                            td.num { (count(&p.cases, "completed")) }
                            td.num { (count(&p.cases, "rejected")) }
                            td.num { (count(&p.cases, "withdrawn") + count(&p.cases, "terminated")) }
                            td.num { (open_tasks) }
                            td.num class=[(overdue > 0).then_some("late")] { (overdue) }
                            td.num { (share(p.at_most_one_trip)) }
                            td.num { (p.trips_per_case) }
                            td.num { (share(p.within_sla)) }
                            td { (ratings(&p.ratings)) }
                        } @else {
                            td.num { "0" } td.num { "0" } td.num { "0" } td.num { "0" } td.num { "0" }
                            td.num { "0" } td.num { "0" } td.num.muted { "—" } td.num.muted { "—" } td.num.muted { "—" } td.muted { "—" }
                        }
                    }
                }
            }
        }
    }
}

/// 好差评 as five small counts, 非常满意 first.
fn ratings(ratings: &BTreeMap<String, u64>) -> Markup {
    let total: u64 = ratings.values().sum();
    if total == 0 {
        return html! { span.muted { "—" } };
    }
    let score: u64 = ratings.iter().map(|(k, n)| k.parse::<u64>().unwrap_or(0) * n).sum();
    let mean = score as f64 / total as f64;
    let good = count(ratings, "5") + count(ratings, "4");
    html! {
        span title={ "非常满意 " (count(ratings, "5")) "，满意 " (count(ratings, "4")) "，基本满意 " (count(ratings, "3")) "，不满意 " (count(ratings, "2")) "，非常不满意 " (count(ratings, "1")) } {
            (format!("{mean:.1} 分")) " · 好评 " (share(good as f64 / total as f64)) " · " (total) " 条"
        }
    }
}

pub fn overview(stalls: &Stalls, titles: &Titles) -> String {
    let total = |status: &str| stalls.processes.iter().map(|p| count(&p.cases, status)).sum::<u64>();
    let overdue: u64 = stalls.states.iter().map(|s| s.overdue).sum();
    let completed: u64 = stalls.processes.iter().map(|p| p.trips.values().sum::<u64>()).sum();
    let one_trip: f64 =
        stalls.processes.iter().map(|p| p.at_most_one_trip * p.trips.values().sum::<u64>() as f64).sum();
    let latest: Vec<&WarningEntry> = stalls.warnings.latest.iter().collect();
    let body = html! {
        h1 { "总览" }
        div.tiles {
            div.tile { div.n #open-cases { (total("open")) } div.k { "在办案件" } }
            div.tile { div.n { (total("awaiting_supplement")) } div.k { "补正中（计时暂停）" } }
            div.tile.red { div.n #overdue-tasks { (overdue) } div.k { "超期待办" } }
            div.tile.red { div.n #open-red { (count(&stalls.warnings.open, "red")) } div.k { "红牌（在办）" } }
            div.tile.yellow { div.n #open-yellow { (count(&stalls.warnings.open, "yellow")) } div.k { "黄牌（在办）" } }
            div.tile.green {
                div.n { @if completed == 0 { "—" } @else { (share(one_trip / completed as f64)) } }
                div.k { "一次办结率（" (completed) " 件办结）" }
            }
        }
        h2 { "流程" }
        (process_table(stalls, titles))
        h2 { "最新预警 " a href="/warnings" { small { "全部" } } }
        (warning_table(&latest, titles))
        h2 { "等待最久的待办" }
        (longest_table(&stalls.longest, titles))
    };
    layout("总览", "/", Some(&stalls.today), body)
}

fn heat_link(process: &str, item: &str, step: &str) -> String {
    format!("/processes/{}?item={}&step={}#state", url_component(process), url_component(item), url_component(step))
}

pub fn process(
    flow: &dsl::CompiledFlow,
    stalls: &Stalls,
    state: Option<(&(String, String), &Vec<LongWait>)>,
    titles: &Titles,
) -> String {
    let heat: diagram::flow::Heat = stalls
        .states
        .iter()
        .map(|s| {
            let figures = diagram::flow::StateHeat {
                waiting: s.waiting,
                overdue: s.overdue,
                p50: s.days.p50,
                p90: s.days.p90,
                max: s.days.max,
            };
            ((s.item.clone(), s.step.clone()), figures)
        })
        .fold(diagram::flow::Heat::new(), |mut heat, (key, figures)| {
            // A state shared by several departments' rows (加签) adds up.
            let entry = heat.entry(key).or_default();
            entry.waiting += figures.waiting;
            entry.overdue += figures.overdue;
            entry.p50 = entry.p50.max(figures.p50);
            entry.p90 = entry.p90.max(figures.p90);
            entry.max = entry.max.max(figures.max);
            heat
        });
    let picture = diagram::flow::svg(flow, &diagram::flow::Options { heat: Some(heat), link: Some(heat_link) });
    let figures = stalls.processes.iter().find(|p| p.process == flow.name);
    let latest: Vec<&WarningEntry> = stalls.warnings.latest.iter().collect();
    let body = html! {
        h1 { (flow.title) " " small.muted { code { (flow.name) } " · 版本 " code { (flow.version.get(..12).unwrap_or(&flow.version)) } } }
        div.tiles {
            @let cases = figures.map(|p| p.cases.clone()).unwrap_or_default();
            div.tile { div.n { (count(&cases, "open")) } div.k { "在办" } }
            div.tile { div.n { (count(&cases, "awaiting_supplement")) } div.k { "补正中" } }
            div.tile { div.n { (count(&cases, "completed")) } div.k { "办结" } }
            div.tile.red { div.n { (stalls.states.iter().map(|s| s.overdue).sum::<u64>()) } div.k { "超期待办" } }
            @if let Some(p) = figures {
                div.tile.green { div.n { (share(p.at_most_one_trip)) } div.k { "一次办结率 · 平均跑动 " (p.trips_per_case) " 次" } }
                div.tile.green { div.n { (share(p.within_sla)) } div.k { "按时办结率" } }
            }
        }
        h2 { "各环节等待（热力图）" }
        div.picture #heatmap { (PreEscaped(picture)) }
        p.muted { "颜色越深，等待的案件越多；红框表示有超期。点击环节查看在该环节等待的案件。" }
        h2 { "各环节等待" }
        @if stalls.states.is_empty() {
            p.muted { "没有在办的待办。" }
        } @else {
            table.states {
                thead { tr { th { "事项" } th { "环节" } th { "部门" } th.num { "等待" } th.num { "中位" } th.num { "P90" } th.num { "最长" } th.num { "超期" } } }
                tbody {
                    @for s in &stalls.states {
                        tr data-item=(s.item) data-step=(s.step) data-waiting=(s.waiting) {
                            td { (titles.item(&s.item)) }
                            td { a href=(heat_link(&s.process, &s.item, &s.step)) { (titles.step(&s.item, &s.step)) } }
                            td { (titles.department(&s.department)) }
                            td.num { (s.waiting) }
                            td.num { (s.days.p50) } td.num { (s.days.p90) } td.num { (s.days.max) }
                            td.num class=[(s.overdue > 0).then_some("late")] { (s.overdue) }
                        }
                    }
                }
            }
        }
        @if let Some(((item, step), waits)) = state {
            h2 #state { "在「" (titles.item(item)) " · " (titles.step(item, step)) "」等待的案件" }
            (longest_table(waits, titles))
        }
        h2 { "等待最久的待办" }
        (longest_table(&stalls.longest, titles))
        h2 { "预警" }
        (warning_table(&latest, titles))
    };
    layout(&flow.title, "", Some(&stalls.today), body)
}

pub fn warnings(
    warnings: &Warnings,
    today: &str,
    level: Option<&str>,
    filter: &StallFilter,
    titles: &Titles,
) -> String {
    let rows: Vec<&WarningEntry> = warnings.latest.iter().filter(|w| level.is_none_or(|l| w.level == l)).collect();
    let link = |wanted: Option<&str>| {
        let mut query = Vec::new();
        if let Some(l) = wanted {
            query.push(format!("level={l}"));
        }
        if let Some(p) = &filter.process {
            query.push(format!("process={}", url_component(p)));
        }
        if let Some(d) = &filter.department {
            query.push(format!("department={}", url_component(d)));
        }
        if query.is_empty() {
            "/warnings".to_string()
        } else {
            format!("/warnings?{}", query.join("&"))
        }
    };
    let body = html! {
        h1 { "预警（电子监察）"
            @if let Some(p) = &filter.process { " · " (titles.process(p)) }
            @if let Some(d) = &filter.department { " · " (titles.department(d)) }
        }
        div.tiles {
            div.tile.red { div.n #warnings-open-red { (count(&warnings.open, "red")) } div.k { "红牌 · 在办案件" } }
            div.tile.yellow { div.n #warnings-open-yellow { (count(&warnings.open, "yellow")) } div.k { "黄牌 · 在办案件" } }
            div.tile { div.n { (count(&warnings.past, "red")) } div.k { "红牌 · 已结案件" } }
            div.tile { div.n { (count(&warnings.past, "yellow")) } div.k { "黄牌 · 已结案件" } }
        }
        div.filters {
            span.muted { "级别：" }
            a href=(link(None)) class=[level.is_none().then_some("on")] { "全部" }
            a href=(link(Some("red"))) class=[(level == Some("red")).then_some("on")] { "红牌" }
            a href=(link(Some("yellow"))) class=[(level == Some("yellow")).then_some("on")] { "黄牌" }
        }
        (warning_table(&rows, titles))
        p.muted { "最新的 " (warnings.latest.len()) " 条，按时间倒序。黄牌：时限将至；红牌：已超期。" }
    };
    layout("预警", "/warnings", Some(today), body)
}

pub fn departments(departments: &[DepartmentFigures], today: &str, titles: &Titles) -> String {
    let body = html! {
        h1 { "部门" }
        @if departments.is_empty() {
            p.muted { "还没有办理记录。" }
        } @else {
            table.departments {
                thead { tr {
                    th { "部门" } th.num { "已办" } th.num { "办理时长中位" } th.num { "P90" } th.num { "最长" }
                    th.num { "按时办结率" } th.num { "在办" } th.num { "超期在办" } th { "" }
                } }
                tbody {
                    @for d in departments {
                        tr data-department=(d.department) {
                            td { (titles.department(&d.department)) " " small.muted { (d.department) } }
                            td.num { (d.handled) }
                            td.num { (d.days.p50) " 天" } td.num { (d.days.p90) " 天" } td.num { (d.days.max) " 天" }
                            td.num class=[(d.within_limit < 0.9).then_some("late")] { (share(d.within_limit)) }
                            td.num { (d.open) }
                            td.num class=[(d.open_overdue > 0).then_some("late")] { (d.open_overdue) }
                            td { a href={ "/warnings?department=" (url_component(&d.department)) } { "预警" } }
                        }
                    }
                }
            }
        }
        p.muted { "办理时长：从待办生成到办结（或容缺受理、不予许可）的工作日数。" }
    };
    layout("部门", "/departments", Some(today), body)
}

fn outcome_label(outcome: &str) -> &'static str {
    match outcome {
        "open" => "办理中",
        "completed" => "已办结",
        "returned" => "退回",
        "tolerated" => "容缺受理",
        "rejected" => "不予许可",
        _ => "随案件结束",
    }
}

/// The timeline as a chart: one lane per step (a step opened again after 退回 shares its lane),
/// a lane for the process's own clock when it has warnings.
fn chart(timeline: &CaseTimeline, titles: &Titles) -> diagram::chart::Chart {
    use diagram::chart::{Bar, Chart, Lane, Mark, Period, Tone};
    let mut lanes: Vec<(String, String, Lane)> = Vec::new();
    for span in &timeline.steps {
        let index = match lanes.iter().position(|(i, s, _)| *i == span.item && *s == span.step) {
            Some(index) => index,
            None => {
                lanes.push((
                    span.item.clone(),
                    span.step.clone(),
                    Lane {
                        label: format!("{} · {}", titles.item(&span.item), titles.step(&span.item, &span.step)),
                        note: titles.department(&span.department),
                        ..Lane::default()
                    },
                ));
                lanes.len() - 1
            }
        };
        let tone = match span.outcome.as_str() {
            _ if span.late => Tone::Red,
            "open" => Tone::Normal,
            "completed" | "tolerated" => Tone::Done,
            _ => Tone::Muted,
        };
        let outcome = outcome_label(&span.outcome);
        let label = lanes[index].2.label.clone();
        lanes[index].2.bars.push(Bar {
            from: span.from,
            to: span.to,
            open: span.outcome == "open",
            tone,
            title: format!(
                "{}：{} 至 {}，{}{}{}",
                label,
                day(&span.opened_at),
                span.ended_at.as_deref().map_or_else(|| "今".to_string(), day),
                outcome,
                span.due.as_deref().map(|d| format!("，时限 {d}")).unwrap_or_default(),
                if span.late { "，超期" } else { "" },
            ),
        });
    }
    let mut process_lane =
        Lane { label: "全流程时限".into(), note: titles.process(&timeline.process), ..Lane::default() };
    for warning in &timeline.warnings {
        let tone = if warning.level == Level::Red { Tone::Red } else { Tone::Yellow };
        let mark = Mark {
            at: warning.position,
            tone,
            label: format!(
                "{}：{}（{}）",
                if warning.level == Level::Red { "红牌" } else { "黄牌" },
                titles.scope(&warning.scope),
                day(&warning.at)
            ),
        };
        let (item, step) = warning.scope.split_once('/').unwrap_or((&warning.scope, ""));
        // An item's warning goes on its latest step's lane, a step's on that step's.
        let lane = lanes.iter_mut().rev().find(|(i, s, _)| i == item && (step.is_empty() || s == step));
        match lane {
            Some((_, _, lane)) if warning.scope != "process" => lane.marks.push(mark),
            _ => process_lane.marks.push(mark),
        }
    }
    let mut chart_lanes: Vec<Lane> = Vec::new();
    if !process_lane.marks.is_empty() {
        chart_lanes.push(process_lane);
    }
    chart_lanes.extend(lanes.into_iter().map(|(_, _, lane)| lane));
    let mut lines = Vec::new();
    if let Some(due) = &timeline.due {
        lines.push(Mark {
            at: due.position,
            tone: Tone::Red,
            label: format!("承诺时限 {}", &due.day.get(5..).unwrap_or(&due.day)),
        });
    }
    lines.push(Mark { at: timeline.now, tone: Tone::Muted, label: "今天".into() });
    Chart {
        title: format!("{} · {}", titles.process(&timeline.process), timeline.case_id),
        days: timeline.days.iter().map(|d| d.get(5..).unwrap_or(d).to_string()).collect(),
        lanes: chart_lanes,
        shaded: timeline
            .pauses
            .iter()
            .map(|p| Period {
                from: p.from,
                to: p.to,
                label: if p.kind == "supplement" {
                    "补正 · 计时暂停".into()
                } else {
                    format!("特别程序 · {}", p.kind)
                },
            })
            .collect(),
        lines,
    }
}

pub fn case(
    timeline: &CaseTimeline,
    state: &CaseState,
    applicant: &[(String, dsl::model::Pii, String)],
    titles: &Titles,
) -> String {
    let picture = diagram::chart::svg(&chart(timeline, titles));
    let body = html! {
        h1 { "案件 " code { (timeline.case_id) } }
        dl.facts {
            dt { "流程" } dd { (process_link(&timeline.process, titles)) }
            dt { "状态" } dd { (status_of(state.status)) }
            dt { "受理时间" } dd { (minute(&state.submitted_at)) }
            @if let Some(due) = &timeline.due { dt { "承诺办结" } dd { (due.day) } }
            @for (field, kind, masked) in applicant {
                dt title=(field) {
                    (match kind { dsl::model::Pii::Name => "姓名", dsl::model::Pii::Id => "证件号码", dsl::model::Pii::Phone => "联系电话" })
                    @if !field.starts_with("applicant.") { "（" (field) "）" }
                }
                dd.masked { (masked) }
            }
        }
        h2 { "时间线（工作日）" }
        div.picture #timeline { (PreEscaped(picture)) }
        p.muted { "条形为各环节从生成待办到办结的时间；灰色斜纹为补正等计时暂停的时段；三角为黄牌、红牌预警。" }
        h2 { "环节" }
        table.steps {
            thead { tr { th { "事项 · 环节" } th { "部门" } th { "开始" } th { "结束" } th { "结果" } th { "时限" } } }
            tbody {
                @for span in &timeline.steps {
                    tr {
                        td { (titles.item(&span.item)) " · " (titles.step(&span.item, &span.step)) }
                        td { (titles.department(&span.department)) }
                        td { (minute(&span.opened_at)) }
                        td { (span.ended_at.as_deref().map_or_else(|| "—".to_string(), minute)) }
                        td { (outcome_label(&span.outcome)) @if span.supplement { " · 补正" } }
                        td class=[span.late.then_some("late")] { (span.due.as_deref().unwrap_or("—")) @if span.late { " 超期" } }
                    }
                }
            }
        }
    };
    layout(&format!("案件 {}", timeline.case_id), "", None, body)
}
